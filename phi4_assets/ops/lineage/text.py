"""A traced lineage as the indented text ``phi4 lineage`` prints."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from .edges import PTS_ESTIMATES, SOURCES, TEACHER_CALLS
from .trace import Lineage, Node


def _short(value: Any, width: int = 48) -> str:
    text = "" if value is None else str(value)  # whitespace kept: a token's leading space matters
    text = text if len(text) <= width else text[:width - 3] + "..."
    return repr(text)


def _p(value: Any) -> str:
    return "?" if value is None else f"{float(value):.2f}"


def _first_tokens(row: dict) -> str:
    with contextlib.suppress(TypeError, ValueError):
        tokens = json.loads(row.get("first_tokens") or "[]")
        outcomes = json.loads(row.get("outcomes") or "[]")
        by_token: dict[Any, list[int]] = {}
        for token, ok in zip(tokens, outcomes):
            counts = by_token.setdefault(token, [0, 0])
            counts[0] += bool(ok)
            counts[1] += 1
        ordered = sorted(by_token.items(), key=lambda kv: (-kv[1][1], str(kv[0])))
        return ", ".join(f"{'end' if t is None else t}:{s}/{n}" for t, (s, n) in ordered)
    return "?"


def _last_user(request: Any) -> str:
    if isinstance(request, dict):
        for message in reversed(request.get("messages") or []):
            if message.get("role") == "user":
                return message.get("content") or ""
    return ""


def summary(node: Node) -> str:
    """One short line of the salient fields of a row."""
    r, t = node.row, node.table
    if node.missing:
        where = [{TEACHER_CALLS: "the teacher cache", PTS_ESTIMATES: "the PTS memo"}.get(t, t)
                 for t in node.table.split("|")]
        return f"not found in {' / '.join(where)}"
    if t == TEACHER_CALLS:
        error = f" error={_short(r.get('error'), 40)}" if r.get("error") else ""
        return (f"task={r.get('task')} model={r.get('model')} tokens={r.get('prompt_tokens')}+"
                f"{r.get('completion_tokens')}{error} prompt={_short(_last_user(r.get('request')), 40)} "
                f"-> {_short(r.get('response'), 40)}")
    if t == PTS_ESTIMATES:
        return (f"problem={r.get('problem_id')} prefix_len={r.get('prefix_len')} p={_p(r.get('p'))} n={r.get('n')} "
                f"successes={r.get('successes')} first token:successes/rollouts {_first_tokens(r)}")
    if t in ("pts_dpo_pairs", "hallucination_dpo_pairs", "judge_dpo_pairs", "dpo1_mix_pairs", "dpo2_mix_pairs"):
        head = {"pts_dpo_pairs": f"source={r.get('source')}", "hallucination_dpo_pairs": f"kind={r.get('kind')}",
                "judge_dpo_pairs": f"subset={r.get('subset')} margin={r.get('margin')}"}.get(
            t, f"kind={r.get('kind')} grades={r.get('grades')}")
        if t == "pts_dpo_pairs" and r.get("p_before") is not None:
            head += f" p {_p(r.get('p_before'))}->{_p(r.get('p_after'))}"
        return f"{head} chosen={_short(r.get('chosen'), 36)} rejected={_short(r.get('rejected'), 36)}"
    if t == "pivotal_tokens":
        state = "accepted" if r.get("accepted") else "rejected by the guard"
        return (f"token={_short(r.get('token_text'))} ({r.get('token')}) at {r.get('index')} "
                f"p {_p(r.get('p_before'))}->{_p(r.get('p_after'))} {state} prefix={_short(r.get('prefix_text'), 36)}")
    if t == "judge_ratings":
        scores = lambda s: "/".join(f"{r.get(f'{k}_{s}'):g}" if isinstance(r.get(f"{k}_{s}"), (int, float))  # noqa: E731
                                    else str(r.get(f"{k}_{s}")) for k in ("accuracy", "style", "detail"))
        extra = f" failure={_short(r.get('failure'), 30)}" if r.get("failure") else ""
        return (f"judge={r.get('judge')} A acc/style/detail={scores('a')} B={scores('b')} "
                f"order_consistent={r.get('order_consistent')}{extra}")
    if t == "judge_candidates":
        return f"generator={r.get('generator')} source={r.get('source')} response={_short(r.get('response'))}"
    fields = {
        "policy_answer_samples": ("sample_index", "text"),
        "answer_checks": ("matches_key", "grader"),
        "reference_answers": ("generator", "answer_text"),
        "bogus_questions": ("bogus_question", "kept"),
        "refusals": ("bogus", "refusal"),
        "hallucination_sft_data": ("kind", "completion"),
        "sft_dataset": ("kind", "completion"),
        "trivia_seeds": ("question", "answer"),
        "math_problems": ("question", "answer"),
        "mcq_questions": ("question", "answer"),
        "code_problems": ("entry_point", "prompt"),
        "chat_prompts": ("prompt",),
        "safety_prompts": ("kind", "prompt"),
        "eval_sets": ("benchmark", "question"),
    }.get(t) or tuple(c for c, v in r.items() if isinstance(v, str) and c != "id")[:2]
    return " ".join(f"{c}={_val(r.get(c))}" for c in fields)


def _val(value: Any) -> str:
    """A field value: free text quoted (and cut), a name or a number as it is."""
    if isinstance(value, str) and (not value or len(value) > 48 or any(ch.isspace() for ch in value)):
        return _short(value)
    return str(value)


def _name(table: str) -> str:
    return {TEACHER_CALLS: "teacher call", PTS_ESTIMATES: "PTS estimate"}.get(table, table)


def _label(node: Node) -> str:
    partition = f" [{node.partition}]" if node.partition is not None else ""
    return f"{_name(node.table)}{partition} {node.id}"


INDENT = "    "


def render_text(lineage: Lineage) -> str:
    """An indented tree per root, one row a line: ``via_column -> asset [partition] id  salient
    fields``. A row reached again is not expanded twice: the rows a node reaches that were
    already shown are named on one ``(also, shown above: ...)`` line (seed rows met again are
    left out there: the footer lists every seed reached, and every teacher call)."""
    lines: list[str] = []
    shown: set[str] = set()

    def emit(key: str, via: str | None, depth: int) -> None:
        node = lineage.nodes[key]
        lines.append(f"{INDENT * depth}{via + ' -> ' if via else ''}{_label(node)}  {summary(node)}")
        shown.add(key)
        again: dict[str, list[str]] = {}
        for parent, column in lineage.parents(key):
            if parent in shown and lineage.nodes[parent].table in SOURCES:
                continue  # a seed row met again: the footer lists the seeds
            if parent in shown:
                again.setdefault(lineage.nodes[parent].table, []).append(parent)
            else:
                emit(parent, column, depth + 1)
        if again:
            names = ", ".join(_label(lineage.nodes[keys[0]]) if len(keys) == 1 else f"{_name(table)} x{len(keys)}"
                              for table, keys in again.items())
            lines.append(f"{INDENT * (depth + 1)}(also, shown above: {names})")

    for root in lineage.roots:
        emit(root, None, 0)
    data = lineage.to_json()
    lines.append("")
    lines.append(f"seeds: {', '.join(data['seeds']) or 'none reached'}")
    lines.append(f"teacher calls: {', '.join(data['teacher_calls']) or 'none'}")
    if data["pts_estimates"]:
        lines.append(f"PTS estimates: {', '.join(data['pts_estimates'])}")
    missing = [k for k, n in lineage.nodes.items() if n.missing]
    if missing:
        lines.append(f"recorded but not found: {', '.join(missing)}")
    return "\n".join(lines)
