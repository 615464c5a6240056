"""Oracles: did a response succeed? Math (the final answer), multiple choice (the letter),
short-answer QA (key and aliases), code (HumanEval tests in the sandbox)."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from ..hallucination.rules import mentions_key
from .sandbox import run_humaneval

# Part of every memoized estimate's key: bump it when an oracle's verdicts change, so stored
# outcomes judged by the old oracle are not reused. 3: each rollout is also marked if it declines
# (``Estimate.declined``); estimates stored before it have no such marks.
ORACLE_VERSION = "3"

# A sign, an optional "$", then digits with commas only as thousands separators ("1,2,3" is three numbers).
_NUMBER = r"[-+]?\$?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
_MARKED = re.compile(rf"(?:answer\s*(?:is|:)|####|\\boxed\{{)[\s:*$]*({_NUMBER})", re.IGNORECASE)
_ANY_NUMBER = re.compile(_NUMBER)


def _normalize_number(text: str) -> str | None:
    """"$1,234.50" -> "1234.5", "12.0" -> "12"; exact (Decimal), so long integers stay distinct."""
    try:
        value = Decimal(text.replace("$", "").replace(",", "").strip().rstrip("."))
    except InvalidOperation:
        return None
    return format(value.normalize(), "f") if value.is_finite() else None


def extract_final_number(text: str) -> str | None:
    """The final answer of a math response: the last explicit "answer is X" / "Answer: X" /
    "#### X" / "\\boxed{X}", else the last number in the text (never the first "=")."""
    marked = _MARKED.findall(text or "")
    if marked:
        return _normalize_number(marked[-1])
    numbers = _ANY_NUMBER.findall(text or "")
    return _normalize_number(numbers[-1]) if numbers else None


def math_oracle(response: str, answer: str) -> bool:
    found = extract_final_number(response)
    return found is not None and found == _normalize_number(str(answer))


# Case matters for the letter: "the answer is a tricky one" picks nothing.
_CHOICE_STATED = re.compile(r"(?i:answer\s*(?:is|:))[\s:*(]*([ABCD])\b")
_CHOICE_LEADING = re.compile(r"^\s*(?:\*\*)?\(?([ABCD])(?:\)|\.|:|\*\*|\s*$)")


_OPTION_MARK = re.compile(r"(?:^|\s)\(?([ABCD])\)")


def extract_choice(text: str) -> str | None:
    """The letter a multiple-choice response picks: the letter of its "answer is X" / "Answer: X",
    else a leading "B)", "(B)", "B.", "**B**" or a lone letter. "A cat ..." is not choice A.

    A muddled response picks nothing: one that states two different letters ("the answer is A ...
    the answer is B"), or one that opens with "A)" and goes on to list other options ("A) Rome
    B) Paris C) ..."): echoing the options is not choosing the first. A response that states one
    letter after opening with another ("A) looks right, but no: the answer is C") picks the stated one."""
    text = text or ""
    stated = {letter.upper() for letter in _CHOICE_STATED.findall(text)}
    if stated:
        return stated.pop() if len(stated) == 1 else None
    m = _CHOICE_LEADING.match(text)
    if not m:
        return None
    others = {letter for letter in _OPTION_MARK.findall(text[m.end():])} - {m.group(1)}
    return None if others else m.group(1)


def mcq_oracle(response: str, key: str) -> bool:
    return extract_choice(response) == key


def qa_oracle(response: str, answer: str, aliases: list[str]) -> bool:
    return mentions_key(response, [answer, *aliases])


_FENCE = re.compile(r"```(?:python)?\n(.*?)(?:```|$)", re.DOTALL)


def code_program(completion: str, prompt: str, entry_point: str) -> str:
    """The program to test: the prompt (its imports and helper functions) followed by the response,
    which is either the function body or a complete function that replaces the prompt's stub."""
    fenced = _FENCE.search(completion)
    code = fenced.group(1) if fenced else completion
    return f"{prompt}\n{code}" if f"def {entry_point}" in code else prompt + code


def code_oracle(completion: str, prompt: str, tests: str, entry_point: str, timeout_s: float = 5.0,
                allow_fallback: bool = True) -> bool:
    """Whether the completion passes the HumanEval tests, run in the sandbox under bwrap. Where bwrap
    cannot run, the sandbox warns once and falls back to its in-process audit hook when
    ``allow_fallback`` (the default: the small and tiny profiles' trade), else raises
    ``sandbox.SandboxUnavailable`` rather than judge untrusted code in the weaker mode."""
    return run_humaneval(code_program(completion, prompt, entry_point), tests, entry_point,
                         timeout_s=timeout_s, allow_fallback=allow_fallback).passed


def oracles_for(allow_fallback: bool = True) -> dict[str, Callable[[str, dict], bool]]:
    """The oracle of each domain, ``(response, problem) -> bool``; ``allow_fallback`` goes to
    ``code_oracle`` (the profile's ``sandbox_allow_fallback``)."""
    return {
        "math": lambda response, problem: math_oracle(response, problem["answer"]),
        "mcq": lambda response, problem: mcq_oracle(response, problem["answer"]),
        "qa": lambda response, problem: qa_oracle(response, problem["answer"], problem.get("aliases", [])),
        "code": lambda response, problem: code_oracle(response, problem["prompt"], problem["tests"],
                                                      problem["entry_point"], allow_fallback=allow_fallback),
    }


ORACLES = oracles_for()
