"""Pivotal Token Search side by side: this project's (``phi4_assets.pts``) vs the open reference
implementation codelion/pts (https://github.com/codelion/pts), on the same model, problems,
oracle, rollouts per estimate, temperature, token budget and threshold.

    .venv/bin/python bench/pts_vs_reference.py --reference PATH [--problems 5] [--rollouts 16]
        [--confirm 64] [--max-new-tokens 48] [--threads 2] [--model DIR] [--temperature 0.7]
        [--gap 0.2] [--z 1.96] [--seed 0]

Tiny smoke run: ... --problems 1 --rollouts 4 --confirm 8 --max-new-tokens 48.
Ratios are project / reference: below 1 for seconds and rollouts per pivot, the project spends
less; above 1 for useful tokens/s, the project samples faster.

PATH is a checkout of codelion/pts: the directory that holds its ``pts/`` package. The reference
is not part of this project: it is imported from PATH and run unmodified. Where PATH is not
given, holds no ``pts/core.py``, or cannot be imported, the benchmark prints one line saying so
and exits 0 having run nothing of the reference (and loaded no model).

Model: SmolLM2-135M-Instruct, ``--model DIR`` or a directory built once from the embedded GGUF
(``phi4_assets.models.base.save_from_gguf``) under the system's temporary directory. Both
systems load the same directory, on the same device, in the same dtype.

Problems: the project's generated math problems (``phi4_assets.sources.mathgen``, seed 5, as
``bench/pts_search.py``), asked in the pipeline's words (``pts.problems.math_message``), keeping
the first ``--problems`` whose p(success) from ``--rollouts`` rollouts is in the pipeline's window
[0.2, 0.8] (that screening is not timed).

How the reference is driven: ``pts.core.PivotalTokenSearcher(model_dir, oracle=..., device,
prob_threshold=gap, temperature, top_p=1.0, top_k=50, min_p=0.0, max_new_tokens, num_samples=N,
batch_size=min(16, N))`` and ``search_pivotal_tokens(query, system_prompt=<SmolLM2's default
system prompt>, max_generations=1, min_prob=0.0, max_prob=1.0)``: one response per problem, no
difficulty veto (the problems are already screened; the project is not vetoed either). Its
``pts/core.py``, ``pts/oracle.py`` and ``pts/storage.py`` are imported as the package
``codelion_pts`` without running its ``__init__``, which also imports the exporters and dataset
loaders (scikit-learn, datasets) that the search never uses. Its oracle is the project's
``math_oracle`` behind the reference's ``Oracle.check_success(query, response)``: the reference
passes the chat-formatted prompt + response, and the adapter judges only the text after the
assistant turn opens, which is what the project's oracle judges. The system prompt passed is the
one SmolLM2's chat template inserts when there is none, so both prompts are the same token ids
(checked). A pass-through around the reference model's ``generate()`` counts its rollouts and
tokens and records the response it samples; it changes no argument and no result.

The response: the reference samples its own, inside ``search_pivotal_tokens`` (it takes none
from the caller). The project's search runs on that same response: the tokens before its
end-of-turn token, their log-probabilities recomputed with one forward pass at the sampling
temperature (the project splits segments at the log-prob midpoint).

Identical: weights, device, dtype, problems, prompt token ids, N, the oracle's verdicts on a
response text, temperature and top-k 50 (transformers' default, which the project's sampler gets
by setting none; no top-p or min-p), max new tokens, the gap threshold, the
response searched, and the confirmation of every pivot. Not identical, by design of each system:
- token budget: a reference rollout samples up to ``max_new_tokens`` from any prefix; a project
  rollout from a k-token prefix samples up to ``max_new_tokens - k`` (the prefix plus the rollout
  is never longer than a response could be);
- contexts: the reference decodes each prefix to text and re-tokenizes it (the count of
  re-tokenized contexts whose ids differ from the response's is printed); the project feeds ids;
- the reference estimates the empty prefix twice (cached under "" and under the decoded prompt),
  searches the end-of-turn token as part of the response, halves segments, skips responses
  under 5 tokens, and has no significance guard; the project memoizes every prefix, splits at the
  log-prob midpoint, and keeps only pivots passing its two-proportion guard (``--z``, the
  pipeline's 1.96; ``--z 0`` turns it off);
- sampling: the project batches rollouts over a shared prefix KV cache; the reference calls
  ``generate()`` with ``num_return_sequences``.

The project runs twice on the same responses: as the pipeline runs it, every problem's search in
lockstep (``search.search_many``: each round's estimates over all problems sampled together,
``estimator.estimate_many``), and one problem at a time (``pivotal_token_search`` per problem, the
pipeline's way before the lockstep), so the lockstep's own gain is printed beside the ratios to
the reference. The reference runs one problem at a time, as it is written.

Measured per system: wall seconds from the root (empty-prefix) estimate to the last pivot, summed
over problems (excluded: model loading, screening, sampling the response, which the reference's
``generate()`` pass-through times and subtracts, and confirmation); estimates; rollouts (sampled
continuations, the response excluded); sampled tokens (batch slots decoded, finished rows
included); useful tokens (before end-of-turn) and useful tokens/s; pivots found; pivots confirmed:
re-estimated with ``--confirm`` rollouts by the project's estimator (token ids, per-response budget,
a seed of its own) at the prefix before and after the token, and confirmed when the new delta has
the found delta's sign and a size of at least the gap. Confirmation is paid by neither system.
Everything is seeded (``--seed``); with few pivots the numbers are anecdotal.
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REFERENCE = "codelion/pts"
REFERENCE_PACKAGE = "codelion_pts"  # the name the reference's pts/ package is imported under
# What SmolLM2's chat template inserts when a conversation has no system message: passing it to the
# reference (which only chat-formats when given a system prompt) gives the project's prompt ids.
SMOLLM_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
WINDOW = (0.2, 0.8)  # the pipeline's pts_window: problems PTS searches
CONFIRM_SEED = 7919  # the confirmation estimates' own rollouts, independent of both searches'


# The top-k both systems sample with: transformers' generate() default, which the project's
# sampler gets by setting none (its models' generation configs set none either).
TOP_K = 50

def find_reference(path: str | None) -> tuple[Path | None, str]:
    """The checkout's root, or None and the one line to print."""
    if not path:
        return None, f"{REFERENCE} reference: no checkout given (--reference PATH); nothing run"
    root = Path(path).expanduser().resolve()
    if not (root / "pts" / "core.py").is_file():
        return None, f"{REFERENCE} reference not found at {root} (no pts/core.py there); nothing run"
    return root, ""


def import_reference(root: Path):
    """The reference's search modules (core, oracle, storage) from the checkout at ``root``,
    imported as the package ``codelion_pts`` without running its ``__init__``."""
    package = types.ModuleType(REFERENCE_PACKAGE)
    package.__path__ = [str(root / "pts")]
    package.__package__ = REFERENCE_PACKAGE
    sys.modules[REFERENCE_PACKAGE] = package
    try:
        return tuple(importlib.import_module(f"{REFERENCE_PACKAGE}.{name}") for name in ("core", "oracle", "storage"))
    except BaseException:
        for name in [m for m in sys.modules if m == REFERENCE_PACKAGE or m.startswith(REFERENCE_PACKAGE + ".")]:
            del sys.modules[name]
        raise


def model_dir(explicit: str | None) -> str:
    """``explicit``, else SmolLM2-135M-Instruct built once from the embedded GGUF."""
    if explicit:
        return explicit
    out = Path(tempfile.gettempdir()) / "phi4-pts-bench-smollm2-135m-instruct"
    if not (out / "config.json").is_file():
        from phi4_assets.models.base import save_from_gguf

        save_from_gguf(out)
    return str(out)


def seed_all(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def until_eos(row: list[int], eos: int) -> int:
    return next((i for i, t in enumerate(row) if t == eos), len(row))


class GenerateMeter:
    """A pass-through around a model's ``generate()``: counts the rollouts the reference samples
    (calls with ``num_return_sequences``) and their tokens, and records and times the response
    (its one call without). Arguments and results pass unchanged."""

    def __init__(self, model, eos: int):
        self.generate, self.eos = model.generate, eos
        model.generate = self
        self.reset()

    def reset(self) -> None:
        self.rollouts = self.slots = self.useful = 0
        self.response: list[int] | None = None
        self.response_prompt: list[int] | None = None
        self.response_s = 0.0
        self.contexts: list[list[int]] = []  # each rollout call's context, after the response is known

    def __call__(self, input_ids, *args, **kwargs):
        t0 = time.perf_counter()
        out = self.generate(input_ids, *args, **kwargs)
        seconds = time.perf_counter() - t0
        sequences = out.sequences if hasattr(out, "sequences") else out
        rows = sequences[:, input_ids.shape[1]:].tolist()
        if "num_return_sequences" in kwargs:
            self.rollouts += len(rows)
            self.slots += sum(len(r) for r in rows)
            self.useful += sum(until_eos(r, self.eos) for r in rows)
            if self.response is not None:
                self.contexts.append(input_ids[0].tolist())
        else:
            self.response, self.response_prompt = rows[0], input_ids[0].tolist()
            self.response_s += seconds
        return out


@dataclass
class Totals:
    wall_s: float = 0.0
    estimates: int = 0
    rollouts: int = 0
    slots: int = 0
    useful: int = 0
    found: int = 0
    confirmed: int = 0
    notes: list[str] = field(default_factory=list)


def per(a: float, b: float) -> float | None:
    return a / b if b else None


def ratio_text(project: float | None, reference: float | None) -> str:
    if project is None or reference is None:
        return "n/a (none on one side)"
    if reference == 0:
        return "n/a"
    return f"{project / reference:.2f}x"


def number(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def run(args, root: Path) -> int:
    import phi4_assets  # noqa: F401  (sets torch's OpenMP wait policy before torch loads)

    os.environ.setdefault("TQDM_DISABLE", "1")  # the reference's progress bars
    try:
        core, oracle_module, storage_module = import_reference(root)
    except Exception as e:  # noqa: BLE001 - any failure to import means: not runnable here
        print(f"{REFERENCE} reference at {root} is not importable ({type(e).__name__}: {e}); nothing run")
        return 0

    import logging

    import torch

    from phi4_assets.core.hardware import resolve_device
    from phi4_assets.models.generation import load_policy
    from phi4_assets.pts.estimator import PrefixEstimator, estimate_many
    from phi4_assets.pts.oracles import math_oracle
    from phi4_assets.pts.problems import math_message
    from phi4_assets.pts.sampler import RolloutSampler
    from phi4_assets.pts.search import pivotal_token_search, search_many, two_proportion_significant
    from phi4_assets.sources.mathgen import generate_math_problems

    torch.set_num_threads(args.threads)
    n, gap, temperature, max_new = args.rollouts, args.gap, args.temperature, args.max_new_tokens
    batch = min(16, n)
    device = resolve_device("auto")
    directory = model_dir(args.model)

    model, tokenizer = load_policy(directory, device=device)
    dtype = next(model.parameters()).dtype
    eos = tokenizer.eos_token_id
    searched = RolloutSampler(model, tokenizer, temperature=temperature, max_new_tokens=max_new, batch_size=batch)
    checker = RolloutSampler(model, tokenizer, temperature=temperature, max_new_tokens=max_new, batch_size=16)
    marker = _generation_marker(tokenizer)

    answers: dict[str, str] = {}

    class ProjectMathOracle(oracle_module.Oracle):
        """The project's math oracle behind the reference's Oracle interface. The reference asks
        ``check_success(query, prompt text + completion)``; the response is the text after the
        assistant turn opens (the question's own numbers must not count as its answer)."""

        def check_success(self, query: str, response: str) -> bool:
            _, opened, text = response.partition(marker)
            return math_oracle(text if opened else response, answers[query])

    storage_dir = tempfile.TemporaryDirectory()
    searcher = core.PivotalTokenSearcher(
        directory, oracle=ProjectMathOracle(), device=device, prob_threshold=gap, temperature=temperature,
        top_p=1.0, top_k=TOP_K, min_p=0.0, max_new_tokens=max_new, num_samples=n, batch_size=batch,
        token_storage=storage_module.TokenStorage(str(Path(storage_dir.name) / "pivotal_tokens.jsonl")),
        log_level=logging.WARNING)
    reference_dtype = next(searcher.model.parameters()).dtype
    if reference_dtype != dtype:  # same weights, same precision
        searcher.model.to(dtype)
        print(f"note: {REFERENCE} loaded the weights in {str(reference_dtype).replace('torch.', '')}; cast to the "
              f"project's {str(dtype).replace('torch.', '')} (preferred_dtype_name) so both run the same precision")
    for m in (model, searcher.model):  # warm up both before anything is timed
        with torch.inference_mode():
            ids = torch.tensor([[eos]], device=device)
            m.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=4,
                       pad_token_id=tokenizer.pad_token_id)
    meter = GenerateMeter(searcher.model, eos)

    # The problems: the project's math problems whose p(success) is in the window (not timed).
    problems, screened = [], 0
    for candidate in generate_math_problems(args.problems * 10, seed=5):
        if len(problems) == args.problems:
            break
        screened += 1
        query = math_message(candidate["question"])
        screen = PrefixEstimator(checker, lambda r, a=candidate["answer"]: math_oracle(r, a),
                                 checker.prompt_ids(query), n, candidate["id"], "screen", seed=args.seed + 1)
        p0 = screen(())
        if WINDOW[0] <= p0 <= WINDOW[1]:
            problems.append((candidate, query, p0))
    print(f"{len(problems)} of {screened} screened problems have p(success) in [{WINDOW[0]}, {WINDOW[1]}] "
          f"({n} rollouts each)", flush=True)

    guard = ((lambda v: two_proportion_significant(v.p_before, n, v.p_after, n, args.z)) if args.z > 0 else None)
    project, one_by_one, reference = Totals(), Totals(), Totals()
    differing_contexts = total_contexts = 0
    searches = []  # (problem, query, p0, prompt ids, full response, response tokens, logprobs, reference pivots)
    for k, (problem, query, p0) in enumerate(problems):
        answers[query] = problem["answer"]
        prompt_ids = searched.prompt_ids(query)

        # codelion/pts: samples the response and searches it.
        seed_all(args.seed + k)
        meter.reset()
        cached = len(searcher.prob_cache)
        t0 = time.perf_counter()
        found = list(searcher.search_pivotal_tokens(query, system_prompt=SMOLLM_SYSTEM, task_type="math",
                                                    dataset_id="mathgen", item_id=problem["id"], max_generations=1,
                                                    min_prob=0.0, max_prob=1.0))
        ref_wall = time.perf_counter() - t0 - meter.response_s
        if meter.response is None:
            print(f"{problem['id']}: the reference sampled no response; skipped")
            continue
        full = meter.response
        if meter.response_prompt != prompt_ids:
            reference.notes.append(f"{problem['id']}: the reference's prompt ids differ from the project's")
        for context in meter.contexts:
            total_contexts += 1
            length = len(context) - len(meter.response_prompt)
            differing_contexts += context != meter.response_prompt + full[:max(0, length)] or length < 0
        ref_indices = [_locate(v, meter.response_prompt, full, tokenizer) for v in found]
        reference.wall_s += ref_wall
        reference.estimates += len(searcher.prob_cache) - cached
        reference.rollouts += meter.rollouts
        reference.slots += meter.slots
        reference.useful += meter.useful
        reference.found += len(found)
        reference.notes.append(f"{problem['id']}: {len(searcher.prob_cache) - cached} estimates, {meter.rollouts} "
                               f"rollouts, {len(found)} pivots at {ref_indices}, {ref_wall:.1f} s")
        # This project searches the same response, without its end-of-turn token.
        tokens = full[:until_eos(full, eos)]
        searches.append((problem, query, p0, prompt_ids, full, tokens, _logprobs(model, prompt_ids, tokens, temperature),
                         list(zip(ref_indices, found))))

    def estimators(label: str) -> list:
        return [PrefixEstimator(searched, (lambda r, a=problem["answer"]: math_oracle(r, a)), prompt_ids, n,
                                problem["id"], label, seed=args.seed)
                for problem, _, _, prompt_ids, *_ in searches]

    def count(totals: Totals, estimators_: list, results: list, wall: float, slots0: int, useful0: int) -> None:
        totals.wall_s += wall
        totals.estimates += sum(len(e.by_prefix) for e in estimators_)
        totals.rollouts += sum(e.rollouts for e in estimators_)
        totals.slots += searched.slot_tokens - slots0
        totals.useful += searched.sampled_tokens - useful0
        totals.found += sum(len(r.pivots) for r in results)

    # This project, as the pipeline runs it: every search in lockstep, each round's estimates (the
    # root's included) sampled together over all problems.
    seed_all(args.seed)
    lockstep = estimators("bench")
    slots0, useful0 = searched.slot_tokens, searched.sampled_tokens
    rounds: list[int] = []

    def estimate(asks: list[tuple[int, int]]) -> list[float]:
        rounds.append(len(asks))
        return [e.p for e in estimate_many([(lockstep[i], tuple(searches[i][5][:length])) for i, length in asks],
                                           seed=args.seed * 1_000 + len(rounds))]

    t0 = time.perf_counter()
    results = search_many([(tokens, logprobs) for *_, tokens, logprobs, _ in searches], estimate, gap, guard)
    count(project, lockstep, results, time.perf_counter() - t0, slots0, useful0)
    project.notes.append(f"lockstep: {len(rounds)} rounds of {rounds} estimates asked")

    # This project one problem at a time (the previous pipeline's way), for the lockstep's gain.
    seed_all(args.seed)
    alone = estimators("bench-alone")
    slots0, useful0 = searched.slot_tokens, searched.sampled_tokens
    t0 = time.perf_counter()
    alone_results = [pivotal_token_search(tokens, logprobs, estimator, gap, guard)
                     for (*_, tokens, logprobs, _), estimator in zip(searches, alone)]
    count(one_by_one, alone, alone_results, time.perf_counter() - t0, slots0, useful0)

    # Confirmation of every system's pivots by one estimator of its own (not timed, not counted).
    for (problem, _, p0, prompt_ids, full, tokens, _, ref_pivots), result, alone_result in zip(
            searches, results, alone_results):
        confirm = PrefixEstimator(checker, (lambda r, a=problem["answer"]: math_oracle(r, a)), prompt_ids,
                                  args.confirm, problem["id"], "confirm", seed=CONFIRM_SEED)

        def confirmed(index: int | None, delta: float) -> bool:
            if index is None:
                return False
            new = confirm(tuple(full[:index + 1])) - confirm(tuple(full[:index]))
            return new * delta > 0 and abs(new) >= gap

        ref_ok = sum(confirmed(i, v.prob_delta) for i, v in ref_pivots)
        proj_ok = sum(confirmed(v.index, v.delta) for v in result.pivots)
        alone_ok = sum(confirmed(v.index, v.delta) for v in alone_result.pivots)
        reference.confirmed += ref_ok
        project.confirmed += proj_ok
        one_by_one.confirmed += alone_ok
        ended = "ended" if len(tokens) < len(full) else "cut at the budget"
        print(f"{problem['id']} (p0 {p0:.2f}, response {len(tokens)} tokens, {ended}): {REFERENCE} "
              f"{len(ref_pivots)} pivots at {[i for i, _ in ref_pivots]} ({ref_ok} confirmed); project "
              f"{result.calls} estimates, {len(result.pivots)} pivots at {[v.index for v in result.pivots]} "
              f"({proj_ok} confirmed, {len(result.rejected)} more vetoed by the guard); one at a time "
              f"{len(alone_result.pivots)} pivots ({alone_ok} confirmed)", flush=True)
    storage_dir.cleanup()

    rows = [("this project (phi4_assets.pts), lockstep", project), ("this project, one problem at a time", one_by_one),
            (REFERENCE, reference)]
    print()
    print(f"PTS on SmolLM2-135M-Instruct, {len(problems)} math problems, N={n} rollouts/estimate, "
          f"temperature {temperature}, {max_new} new tokens, gap {gap}, confirmation {args.confirm} rollouts; "
          f"both on the response {REFERENCE} samples:")
    print()
    print("| system | wall s | estimates | rollouts | sampled tokens | useful tokens | useful tok/s | pivots found "
          f"| confirmed ({args.confirm}) | s / confirmed pivot | rollouts / confirmed pivot |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, t in rows:
        print(f"| {name} | {t.wall_s:.1f} | {t.estimates} | {t.rollouts} | {t.slots:,} | {t.useful:,} "
              f"| {number(per(t.useful, t.wall_s))} | {t.found} | {t.confirmed} "
              f"| {number(per(t.wall_s, t.confirmed))} | {number(per(t.rollouts, t.confirmed))} |")
    print()
    print("| project / reference | ratio |")
    print("|---|---:|")
    ratios = [
        ("wall s per confirmed pivot", lambda t: per(t.wall_s, t.confirmed)),
        ("rollouts per confirmed pivot", lambda t: per(t.rollouts, t.confirmed)),
        ("useful tokens/s", lambda t: per(t.useful, t.wall_s)),
        ("wall s per pivot found", lambda t: per(t.wall_s, t.found)),
        ("rollouts per pivot found", lambda t: per(t.rollouts, t.found)),
    ]
    for name, measure in ratios:
        print(f"| {name} | {ratio_text(measure(project), measure(reference))} |")
    print()
    print("| project lockstep / one problem at a time | ratio |")
    print("|---|---:|")
    for name, measure in ratios:
        print(f"| {name} | {ratio_text(measure(project), measure(one_by_one))} |")
    print()
    print(f"Threads: torch.set_num_threads({args.threads}) (torch reports {torch.get_num_threads()} intra-op, "
          f"{torch.get_num_interop_threads()} inter-op; OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}), "
          f"device {device}, {str(dtype).replace('torch.', '')}, seed {args.seed}. "
          f"{REFERENCE} samples its own response; the project searched the same one. "
          f"{REFERENCE} re-tokenized {differing_contexts} of {total_contexts} rollout contexts into ids other than "
          f"the response's. Significance guard: "
          + (f"z {args.z} (project only)." if args.z > 0 else "off.")
          + f" Anecdotal below ~10 confirmed pivots per system (here: project {project.confirmed}, "
          f"reference {reference.confirmed}).")
    for note in project.notes + reference.notes:
        print(f"{REFERENCE if note in reference.notes else 'note'}: {note}")
    return 0


def _generation_marker(tokenizer) -> str:
    """The text the chat template adds to open the assistant's turn ("<|im_start|>assistant\\n")."""
    messages = [{"role": "user", "content": "x"}]
    with_turn = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    without = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
    return with_turn[len(without):] if with_turn.startswith(without) and len(with_turn) > len(without) else "assistant"


def _logprobs(model, prompt_ids: list[int], tokens: list[int], temperature: float) -> list[float]:
    """Each response token's log-probability under the sampling distribution (temperature, then
    the top ``TOP_K`` tokens renormalized, as the project's sampler reports them)."""
    import torch

    if not tokens:
        return []
    with torch.inference_mode():
        ids = torch.tensor([prompt_ids + tokens], device=model.device)
        logits = model(ids).logits[0, len(prompt_ids) - 1:len(prompt_ids) - 1 + len(tokens)].float()
        scaled = logits / temperature
        kth = scaled.topk(TOP_K, dim=-1).values[:, -1:]
        logp = torch.log_softmax(scaled.masked_fill(scaled < kth, float("-inf")), dim=-1)
        return logp.gather(1, torch.tensor(tokens, device=model.device)[:, None])[:, 0].tolist()


def _locate(pivot, prompt_ids: list[int], full: list[int], tokenizer) -> int | None:
    """The response position of a reference pivot: where its token follows its (decoded) context."""
    for i, token in enumerate(full):
        if token == pivot.pivot_token_id and \
                tokenizer.decode(prompt_ids + full[:i], skip_special_tokens=False) == pivot.pivot_context:
            return i
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"PTS: this project vs {REFERENCE}, side by side")
    parser.add_argument("--reference", help=f"a checkout of {REFERENCE} (the directory holding pts/)")
    parser.add_argument("--problems", type=int, default=5, help="math problems searched (p(success) in [0.2, 0.8])")
    parser.add_argument("--rollouts", type=int, default=16, help="rollouts per p(success) estimate, both systems")
    parser.add_argument("--confirm", type=int, default=64, help="rollouts per confirmation estimate")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--gap", type=float, default=0.2, help="pivot threshold |p_after - p_before|, both systems")
    parser.add_argument("--z", type=float, default=1.96, help="the project's significance guard (0: off)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="SmolLM2-135M-Instruct directory (default: built once from the GGUF)")
    args = parser.parse_args(argv)
    root, message = find_reference(args.reference)
    if root is None:
        print(message)
        return 0
    return run(args, root)


if __name__ == "__main__":
    sys.exit(main())
