"""Oracles: did a response succeed? Math (the final answer), multiple choice (the letter),
short-answer QA (key and aliases), code (HumanEval tests in the sandbox)."""

from __future__ import annotations

import re

from ..hallucination.rules import mentions_key
from .sandbox import run_humaneval

_NUMBER = r"[-+]?\$?\d[\d,]*(?:\.\d+)?"
_MARKED = re.compile(rf"(?:answer is|answer:|####|\\boxed\{{)\s*\**\s*({_NUMBER})", re.IGNORECASE)
_ANY_NUMBER = re.compile(_NUMBER)


def _normalize_number(text: str) -> str | None:
    text = text.replace("$", "").replace(",", "").strip().rstrip(".")
    try:
        value = float(text)
    except ValueError:
        return None
    return str(int(value)) if value == int(value) else repr(value)


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


_CHOICE_STATED = re.compile(r"answer(?: is|:)\s*\(?\**([ABCD])\b", re.IGNORECASE)
_CHOICE_LEADING = re.compile(r"^\s*(?:\*\*)?\(?([ABCD])(?:\)|\.|:|\*\*|\s*$)")


def extract_choice(text: str) -> str | None:
    """The letter a multiple-choice response picks: the last "answer is X" / "Answer: X", else
    a leading "B)", "(B)", "B.", "**B**" or a lone letter. "A cat ..." is not choice A."""
    stated = _CHOICE_STATED.findall(text or "")
    if stated:
        return stated[-1].upper()
    m = _CHOICE_LEADING.match(text or "")
    return m.group(1) if m else None


def mcq_oracle(response: str, key: str) -> bool:
    return extract_choice(response) == key


def qa_oracle(response: str, answer: str, aliases: list[str]) -> bool:
    return mentions_key(response, [answer, *aliases])


_FENCE = re.compile(r"```(?:python)?\n(.*?)(?:```|$)", re.DOTALL)


def code_program(completion: str, prompt: str, entry_point: str) -> str:
    """The program to test: a complete function from the response (its imports from the prompt
    kept), or the prompt followed by the response as the function body."""
    fenced = _FENCE.search(completion)
    code = fenced.group(1) if fenced else completion
    if f"def {entry_point}" in code:
        imports = "\n".join(line for line in prompt.splitlines() if line.startswith(("import ", "from ")))
        return f"{imports}\n{code}"
    return prompt + code


def code_oracle(completion: str, prompt: str, tests: str, entry_point: str, timeout_s: float = 5.0) -> bool:
    return run_humaneval(code_program(completion, prompt, entry_point), tests, entry_point,
                         timeout_s=timeout_s).passed


ORACLES = {
    "math": lambda response, problem: math_oracle(response, problem["answer"]),
    "mcq": lambda response, problem: mcq_oracle(response, problem["answer"]),
    "qa": lambda response, problem: qa_oracle(response, problem["answer"], problem.get("aliases", [])),
    "code": lambda response, problem: code_oracle(response, problem["prompt"], problem["tests"],
                                                  problem["entry_point"]),
}
