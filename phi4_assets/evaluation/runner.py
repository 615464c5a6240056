"""Evaluating one model directory on ``eval_sets`` rows: greedy answers, grades, metrics.

Prompts are the user messages PTS sends for the same kinds of problem (``pts/problems.py``),
so a model is evaluated in the format it was trained on. Decoding is greedy
(deterministic, and what pass@1 with one sample means), batched with left padding, prompts
sorted by length within a benchmark so a batch wastes little on padding.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pandas as pd

from ..models.decode import decode, stop_ids
from ..models.generation import Sample, chat_prompt
from ..pts import problems
from .graders import Grader, GradeItem
from .rule_grader import RuleGrader
from .metrics import CHECKERS, aggregate, check_response

log = logging.getLogger(__name__)

DEFAULT_MAX_NEW_TOKENS = {"simpleqa": 48, "mcq": 16, "math": 96, "code": 192, "safety": 64}
BENCHMARKS = tuple(DEFAULT_MAX_NEW_TOKENS)
# The per-item columns and their DuckDB types (the stored ``stage_evaluations`` table adds the stage).
ITEM_TYPES = {"id": "VARCHAR", "benchmark": "VARCHAR", "question": "VARCHAR", "response": "VARCHAR",
              "response_tokens": "BIGINT", "finished": "BOOLEAN", "grade": "VARCHAR", "correct": "BOOLEAN",
              "grader": "VARCHAR", "bogus": "BOOLEAN", "category": "VARCHAR", "extracted": "VARCHAR",
              "teacher_call_id": "VARCHAR", "grader_reply": "VARCHAR", "grade_failure": "VARCHAR"}
ITEM_COLUMNS = list(ITEM_TYPES)
# Text columns that may be empty throughout: typed, so a stored table gets VARCHAR, not a NULL type.
NULLABLE_TEXT = ["category", "extracted", "teacher_call_id", "grader_reply", "grade_failure"]


# Within a benchmark, a limit takes its strata in turn (real and bogus SimpleQA questions,
# harmful prompts and their benign look-alikes), so a short evaluation still has both sides.
STRATA = {"simpleqa": "bogus", "safety": "category"}


def select_items(eval_sets: pd.DataFrame, limits: dict) -> pd.DataFrame:
    """The first ``limits[benchmark]`` items of each benchmark by id (None: all of them),
    alternating between the benchmark's strata."""
    parts = []
    for benchmark, frame in eval_sets.sort_values("id").groupby("benchmark", sort=True):
        n = limits.get(benchmark)
        if n is not None and benchmark in STRATA:
            strata = [g for _, g in frame.groupby(STRATA[benchmark], sort=True, dropna=False)]
            rank = pd.concat([g.assign(_rank=range(len(g))) for g in strata])
            frame = rank.sort_values(["_rank", STRATA[benchmark]]).head(n).drop(columns="_rank")
        elif n is not None:
            frame = frame.head(n)
        parts.append(frame)
    return pd.concat(parts) if parts else eval_sets


def user_message(item: Mapping[str, Any]) -> str:
    """The user message for an ``eval_sets`` row, in the PTS problem formats."""
    benchmark, question = item["benchmark"], item["question"]
    if benchmark == "math":
        return problems.math_message(question)
    if benchmark == "mcq":
        return problems.mcq_message(question, item["choices"])
    if benchmark == "code":
        return problems.code_message(question)
    if benchmark in ("simpleqa", "safety"):
        return question
    raise ValueError(f"unknown benchmark {benchmark!r}: expected one of {', '.join(BENCHMARKS)}")


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def _clean(row: Mapping[str, Any]) -> dict:
    """A row as plain Python: missing cells (NaN, NA) as None, aliases as a list of strings
    (DuckDB hands lists back as arrays)."""
    out = {k: (None if _missing(v) else v) for k, v in row.items()}
    aliases = out.get("aliases")
    out["aliases"] = [str(a) for a in aliases] if aliases is not None else []
    out["bogus"] = bool(out.get("bogus") or False)
    return out


def greedy_generate(model, tokenizer, prompts: Sequence[str], *, max_new_tokens: int, batch_size: int = 8,
                    logger: Any = None, label: str = "") -> list[Sample]:
    """Greedy completions of already-templated prompts, in prompt order, with progress logs
    (counts and tokens/s) about every 10 s: batches of ``batch_size`` prompts sorted by length,
    left-padded, each row leaving its batch when it ends (``models.decode``)."""
    logger = logger or log
    stops = stop_ids(model, tokenizer)
    lengths = [len(ids) for ids in tokenizer(list(prompts), add_special_tokens=False)["input_ids"]]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    out: list[Sample | None] = [None] * len(prompts)
    started = last_report = time.monotonic()
    done = generated = 0
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        enc = tokenizer([prompts[i] for i in batch], return_tensors="pt", padding=True,
                        add_special_tokens=False).to(model.device)
        rows = decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=max_new_tokens, stop_ids=stops)
        for i, row in zip(batch, rows):
            out[i] = Sample(tokenizer.decode(row.token_ids, skip_special_tokens=True).strip(), len(row.token_ids),
                            row.finished)
            generated += len(row.token_ids)
        done += len(batch)
        if time.monotonic() - last_report >= 10 or done == len(order):
            elapsed = max(time.monotonic() - started, 1e-9)
            logger.info(f"{label}: generated {done}/{len(order)} responses, {generated} tokens, "
                        f"{generated / elapsed:.1f} tok/s")
            last_report = time.monotonic()
    return out  # type: ignore[return-value]


def _grade_simpleqa(items: list[dict], samples: list[Sample], grader: Grader) -> list[dict]:
    grades = grader.grade_many([GradeItem(question=i["question"], answer=i.get("answer"), response=s.text,
                                          aliases=tuple(i["aliases"]), bogus=i["bogus"])
                                for i, s in zip(items, samples)])
    return [{"grade": g.letter, "correct": g.letter == ("C" if i["bogus"] else "A"), "grader": g.grader,
             "teacher_call_id": g.teacher_call_id, "grader_reply": g.raw, "grade_failure": g.failure}
            for i, g in zip(items, grades)]


def _check_others(benchmark: str, items: list[dict], samples: list[Sample], allow_fallback: bool) -> list[dict]:
    def check(pair: tuple[dict, Sample]) -> dict:
        item, sample = pair
        verdict = check_response(benchmark, sample.text, answer=item.get("answer"), prompt=item["question"],
                                 tests=item.get("tests"), entry_point=item.get("entry_point"),
                                 harmful=item.get("category") == "harmful", allow_fallback=allow_fallback)
        return {"grade": verdict.grade, "correct": verdict.correct, "grader": CHECKERS[benchmark],
                "extracted": verdict.extracted}

    # Code runs each program in its own sandboxed process: a few at once keep the cores busy.
    workers = min(4, os.cpu_count() or 1) if benchmark == "code" else 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(check, zip(items, samples)))


def evaluate_model(model_dir: str, items: pd.DataFrame | Iterable[Mapping[str, Any]], *,
                   grader: Grader | None = None, benchmarks: Sequence[str] | None = None,
                   max_new_tokens: Mapping[str, int] | None = None, batch_size: int = 8, logger: Any = None,
                   n_boot: int = 2000, seed: int = 0,
                   sandbox_allow_fallback: bool = True, device: str = "auto",
                   policy: Any = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Answer every item greedily with the model in ``model_dir``, grade, and aggregate.

    ``items``: ``eval_sets`` rows (id, benchmark, question, answer, aliases, bogus, choices,
    tests, entry_point, category). ``grader`` grades simpleqa (default ``RuleGrader``);
    the other benchmarks use the PTS oracles. ``max_new_tokens`` overrides
    ``DEFAULT_MAX_NEW_TOKENS`` per benchmark; ``sandbox_allow_fallback`` goes to the code
    oracle (``pts.oracles.code_oracle``); ``device`` to ``load_policy``; ``policy``: a policy
    engine over ``model_dir`` to generate with instead (``models.engine``). Returns (per-item rows with ``ITEM_COLUMNS``,
    aggregates with ``metrics.AGGREGATE_COLUMNS``).

    Per-item ``grade``: A / B / C for simpleqa, "pass" / "fail" for mcq, math and code,
    "refused" / "answered" for safety. ``correct`` is the wanted outcome: A on a real
    question, C (declined) on a bogus one, pass, a refused harmful prompt, an answered benign one.
    """
    logger = logger or log
    grader = grader or RuleGrader()
    limits = {**DEFAULT_MAX_NEW_TOKENS, **(max_new_tokens or {})}
    rows = [_clean(r) for r in (items.to_dict("records") if isinstance(items, pd.DataFrame) else items)]
    unknown = sorted({r["benchmark"] for r in rows} - set(BENCHMARKS))
    wanted = list(benchmarks) if benchmarks is not None else list(BENCHMARKS)
    unknown += sorted(set(wanted) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"unknown benchmark(s) {', '.join(map(repr, unknown))}: expected {', '.join(BENCHMARKS)}")
    by_benchmark = {b: [r for r in rows if r["benchmark"] == b] for b in wanted}
    by_benchmark = {b: rs for b, rs in by_benchmark.items() if rs}
    if not by_benchmark:
        raise ValueError(f"no items to evaluate for benchmark(s) {', '.join(wanted)}")

    if policy is None:
        from ..models.engine import TransformersPolicy

        policy = TransformersPolicy(str(model_dir), device=device)
    tokenizer = policy.tokenizer
    logger.info(f"evaluating {model_dir} on {', '.join(f'{b} ({len(rs)})' for b, rs in by_benchmark.items())}")
    out: list[dict] = []
    for benchmark, bench_items in by_benchmark.items():
        prompts = [chat_prompt(tokenizer, user_message(item)) for item in bench_items]
        samples = policy.greedy(prompts, max_new_tokens=limits[benchmark], batch_size=batch_size, logger=logger,
                                label=benchmark)
        verdicts = (_grade_simpleqa(bench_items, samples, grader) if benchmark == "simpleqa"
                    else _check_others(benchmark, bench_items, samples, sandbox_allow_fallback))
        for item, sample, verdict in zip(bench_items, samples, verdicts):
            out.append({"id": item["id"], "benchmark": benchmark, "question": item["question"],
                        "response": sample.text, "response_tokens": sample.n_tokens, "finished": sample.finished,
                        "bogus": item["bogus"], "category": item.get("category"), **verdict})
        logger.info(f"{benchmark}: {sum(v['correct'] for v in verdicts)}/{len(verdicts)} as wanted")
    per_item = pd.DataFrame(out).reindex(columns=ITEM_COLUMNS).astype({c: "string" for c in NULLABLE_TEXT})
    return per_item, aggregate(per_item, n_boot=n_boot, seed=seed)
