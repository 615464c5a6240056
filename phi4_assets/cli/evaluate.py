"""``phi4 eval``: SimpleQA-style evaluation of any model directory on any question file.

The file is JSONL with ``id, question, answer, aliases, bogus`` per line (the shipped
``data/eval/simpleqa.jsonl`` also has ``topic``, which is accepted). Malformed files fail with
``FILE:LINE: field 'F': problem`` and exit code 2. Metrics go to stdout (a table, or with
``--json`` exactly one JSON object); progress goes to stderr.

JSON keys: ``correct``, ``incorrect``, ``not_attempted``, ``accuracy_given_attempted``,
``f1`` (fractions of the real questions, as simple-evals reports them), ``bogus_refusal_rate``
(fraction of the bogus questions graded not attempted), ``n`` (the number of real questions,
the denominator of the first five), ``n_bogus``, ``counts``, ``ci`` (95% intervals), ``grader``
and ``model``. Undefined values (no real or no bogus questions) are null.

Every ``phi4`` command imports this module, so it imports no pandas or torch at module level.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

from ..sources import schemas
from ..sources.records import RecordSpec, SourceError, parse_records, text

log = logging.getLogger("phi4_assets.evaluation")

# The SimpleQA schema with ``topic`` free text, so files written for other topics fit too.
QUESTIONS = RecordSpec(name="simpleqa", fields={**schemas.SIMPLEQA.fields, "topic": text}, rule=schemas.SIMPLEQA.rule)
NO_TOPIC = "unspecified"


def _with_topic(line: str) -> str:
    """A line with ``topic`` filled in when it is a JSON object without one; other lines are
    left as they are, for the parser to report."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return line
    if not isinstance(record, dict) or "topic" in record:
        return line
    return json.dumps({**record, "topic": NO_TOPIC})


def read_questions(path: str | Path) -> list[dict]:
    """The question file's records, validated like the shipped sources (errors name the file,
    the line and the field); ``topic`` is optional."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            return parse_records((_with_topic(line) for line in f), QUESTIONS, str(path))
    except FileNotFoundError:
        raise SourceError(f"{path}: file not found (questions)") from None
    except UnicodeDecodeError as e:
        raise SourceError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None


def eval_items(records: list[dict]) -> list[dict]:
    """Question records as ``eval_sets`` rows of the simpleqa benchmark."""
    return [{"id": r["id"], "benchmark": "simpleqa", "question": r["question"], "answer": r["answer"],
             "aliases": r["aliases"], "bogus": r["bogus"], "category": r["topic"]} for r in records]


def _teacher_grader():
    """The LLM grader over the configured endpoint; an error when none is configured (the
    embedded 135M teacher cannot grade)."""
    import os

    from ..config.profiles import load_profile
    from ..config.settings import Paths
    from ..teacher.resource import TeacherResource
    from ..evaluation.graders import LLMGrader

    profile = load_profile()
    if not profile.teacher_base_url:
        raise ValueError("--grader llm needs a teacher endpoint: set PHI4_TEACHER_BASE_URL (and PHI4_TEACHER_MODEL, "
                         "OPENAI_API_KEY if the endpoint wants one), or use --grader rules")
    paths = Paths.from_env()
    paths.teacher_cache.parent.mkdir(parents=True, exist_ok=True)
    teacher = TeacherResource(base_url=profile.teacher_base_url, model=profile.teacher_model,
                              api_key=os.environ.get("OPENAI_API_KEY"), max_concurrency=profile.teacher_max_concurrency,
                              timeout_s=profile.teacher_timeout_s, max_retries=profile.teacher_max_retries,
                              max_tokens_param=profile.teacher_max_tokens_param, cache_path=str(paths.teacher_cache))
    return teacher, LLMGrader.from_teacher(teacher, logger=log)


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def metrics_json(aggregates, *, model: str) -> dict:
    """The ``--json`` object from the simpleqa rows of the aggregates."""
    from ..evaluation.metrics import SIMPLEQA_METRICS

    rows = aggregates[aggregates["benchmark"] == "simpleqa"].set_index("metric")
    out: dict = {name: _number(rows.loc[name, "value"]) for name in SIMPLEQA_METRICS}
    out["n"] = int(rows.loc["correct", "n"])
    out["n_bogus"] = int(rows.loc["bogus_refusal_rate", "n"])
    out["counts"] = {name: int(rows.loc[name, "count"]) for name in ("correct", "incorrect", "not_attempted")}
    out["counts"]["bogus_refused"] = int(rows.loc["bogus_refusal_rate", "count"])
    out["ci"] = {name: [_number(rows.loc[name, "ci_low"]), _number(rows.loc[name, "ci_high"])]
                 for name in SIMPLEQA_METRICS}
    out["grader"] = str(rows["grader"].iloc[0])
    out["model"] = model
    return out


def metrics_table(summary: dict) -> str:
    """The summary as an aligned plain-text table (percent with 95% CI)."""
    labels = {"correct": "correct", "incorrect": "incorrect", "not_attempted": "not attempted",
              "accuracy_given_attempted": "accuracy given attempted", "f1": "F1",
              "bogus_refusal_rate": "bogus questions refused"}
    lines = [f"{'metric':<26} {'value':>7}  95% CI", "-" * 50]
    for name, label in labels.items():
        value, (low, high) = summary[name], summary["ci"][name]
        shown = "n/a" if value is None else f"{100 * value:6.1f}%"
        interval = "" if low is None else f"[{100 * low:.1f}, {100 * high:.1f}]"
        lines.append(f"{label:<26} {shown:>7}  {interval}")
    counts = summary["counts"]
    lines.append("-" * 50)
    lines.append(f"real questions: {summary['n']} ({counts['correct']} correct, {counts['incorrect']} incorrect, "
                 f"{counts['not_attempted']} not attempted); bogus: {summary['n_bogus']} "
                 f"({counts['bogus_refused']} refused); grader: {summary['grader']}")
    return "\n".join(lines)


def run_eval(args: argparse.Namespace) -> int:
    from ..evaluation.rule_grader import RuleGrader
    from ..evaluation.runner import evaluate_model

    records = read_questions(args.questions)
    if args.limit is not None:
        records = records[: args.limit]
    if not Path(args.model).is_dir():
        raise FileNotFoundError(f"{args.model}: not a model directory")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    teacher = None
    try:
        if args.grader == "llm":
            teacher, grader = _teacher_grader()
        else:
            grader = RuleGrader()
        limits = {"simpleqa": args.max_new_tokens} if args.max_new_tokens else None
        _, aggregates = evaluate_model(args.model, eval_items(records), grader=grader, max_new_tokens=limits,
                                       batch_size=args.batch_size, logger=log)
    finally:
        if teacher is not None:
            teacher.close()
        log.removeHandler(handler)
    summary = metrics_json(aggregates, model=str(args.model))
    print(json.dumps(summary) if args.json else metrics_table(summary))
    return 0


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return number


def add_eval_parser(commands) -> None:
    """Register ``phi4 eval`` on the top-level sub-command parsers."""
    parser = commands.add_parser("eval", help="SimpleQA-style evaluation of a model directory on a JSONL question file")
    parser.add_argument("--model", required=True, help="a Hugging Face model directory")
    parser.add_argument("--questions", required=True,
                        help="JSONL with id, question, answer, aliases, bogus per line (topic optional)")
    parser.add_argument("--json", action="store_true", help="print exactly one JSON object")
    parser.add_argument("--grader", choices=("rules", "llm"), default="rules",
                        help="rules (deterministic, default) or llm (the endpoint in PHI4_TEACHER_BASE_URL)")
    parser.add_argument("--max-new-tokens", type=_positive, default=None,
                        help="answer length limit in tokens (default: the runner's simpleqa default)")
    parser.add_argument("--limit", type=_positive, default=None, help="evaluate the first N questions only")
    parser.add_argument("--batch-size", type=_positive, default=8, help="prompts decoded together")
    parser.set_defaults(run=run_eval)
