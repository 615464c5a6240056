"""Oracles decide success from the FINAL answer, exactly, and run code in the sandbox."""

from __future__ import annotations

import pytest

from phi4_assets.pts.oracles import (ORACLES, code_oracle, extract_choice, extract_final_number, math_oracle,
                                     mcq_oracle, qa_oracle)
from phi4_assets.sources.humaneval import read_humaneval


@pytest.mark.parametrize("text, number", [
    ("15 - 3 = 12 apples left, then 12 + 5 = 17. The answer is 17.", "17"),  # not the first "="
    ("She had 15 - 3 = 12 left.\n#### 17", "17"),
    ("3 * 4 = 12\n#### 12 ... wait: 12 + 1 = 13\n#### 13", "13"),  # the last marker, not the first
    ("The answer is 17, since 12 + 3 = 15 was wrong.", "17"),  # a marker beats a later number
    ("So the total is 4 + 5 = 9", "9"),  # "= X" at the very end
    ("She pays $1,234.00 in total.", "1234"),
    ("The distance is 1,234,567 meters", "1234567"),
    ("Picks 1,2,3 in turn", "3"),  # commas only separate thousands
    ("The average is 42.50 kg", "42.5"),
    ("12.0", "12"),
    ("Answer: -7", "-7"),
    ("**Answer:** 96", "96"),
    ("The answer is: $18.", "18"),
    ("\\boxed{1,000}", "1000"),
    ("The number is 12345678901234567891", "12345678901234567891"),  # exact, no float rounding
    ("I am not sure.", None),
    ("", None),
])
def test_final_number(text, number):
    assert extract_final_number(text) == number


def test_math_oracle_compares_numbers_exactly():
    assert math_oracle("So the answer is 17.0", "17")
    assert math_oracle("#### 1,234", "1234")
    assert not math_oracle("17 + 1 = 18", "17")
    assert not math_oracle("no number here", "17")
    assert not math_oracle("#### 12345678901234567891", "12345678901234567890")


@pytest.mark.parametrize("text, letter", [
    ("B) Paris", "B"), ("(C) because ...", "C"), ("D.", "D"), ("**A**", "A"), ("C", "C"), ("  B \n", "B"),
    ("I think the answer is (B).", "B"), ("Answer: D", "D"), ("**Answer:** B", "B"),
    ("The correct answer is: C", "C"), ("A) looks right, but no: the answer is C", "C"),
    ("The answer is a tricky one, but (B) fits.", None),  # the article "a" is not choice A
    ("A cat is an animal, so ...", None), ("A. Paris is the capital", "A"),
    ("B and C are both plausible", None), ("None of them.", None), ("", None),
    # Muddled: two stated letters, or the options echoed after a leading one.
    ("The answer is A. Or maybe the answer is B.", None), ("Answer: C ... Answer: C", "C"),
    ("A) Rome\nB) Paris\nC) Berlin\nD) Madrid", None), ("(A) Rome (B) Paris", None),
    ("A) Rome, since it was the capital of the empire (A) is right", "A"),
])
def test_choice_extraction(text, letter):
    assert extract_choice(text) == letter


def test_mcq_oracle():
    assert mcq_oracle("The answer is B", "B")
    assert not mcq_oracle("A) Rome", "B")
    assert not mcq_oracle("A cat is an animal", "A")


def test_qa_oracle_matches_whole_words_of_the_answer_or_an_alias():
    assert qa_oracle("It is Lima, the capital.", "Lima", [])
    assert not qa_oracle("Limassol is in Cyprus.", "Lima", [])
    assert qa_oracle("the Pacific", "Pacific Ocean", ["Pacific"])
    assert qa_oracle("Written by Mark Twain.", "Samuel Clemens", ["Mark Twain"])
    assert qa_oracle("It was built in SÃO PAULO!", "Sao Paulo", [])
    assert not qa_oracle("I don't know.", "Paris", ["City of Light"])


@pytest.fixture(scope="module")
def humaneval():
    return {p["id"]: p for p in read_humaneval()}


def test_code_oracle_body_or_full_function(humaneval):
    problem = humaneval["HumanEval/0"]
    args = (problem["prompt"], problem["tests"], problem["entry_point"])
    assert code_oracle(problem["canonical_solution"], *args)
    assert code_oracle("```python\n" + problem["prompt"] + problem["canonical_solution"] + "```", *args)
    assert not code_oracle("    return None\n", *args)
    assert not code_oracle("```python\ndef has_close_elements(numbers, threshold):\n    return True\n```", *args)


def test_code_oracle_keeps_the_prompts_helper_functions(humaneval):
    problem = humaneval["HumanEval/10"]  # make_palindrome calls is_palindrome, defined only in the prompt
    full = "```python\ndef make_palindrome(string: str) -> str:\n" + problem["canonical_solution"] + "```"
    assert code_oracle(full, problem["prompt"], problem["tests"], problem["entry_point"])


def test_oracles_by_domain(humaneval):
    problem = humaneval["HumanEval/2"]
    assert ORACLES["code"](problem["canonical_solution"], problem)
    assert not ORACLES["code"]("    return None\n", problem)
    assert ORACLES["math"]("#### 5", {"answer": "5"}) and not ORACLES["math"]("#### 6", {"answer": "5"})
    assert ORACLES["mcq"]("Answer: C", {"answer": "C"}) and not ORACLES["mcq"]("Answer: D", {"answer": "C"})
    assert ORACLES["qa"]("The City of Light", {"answer": "Paris", "aliases": ["City of Light"]})
    assert not ORACLES["qa"]("Lyon", {"answer": "Paris", "aliases": ["City of Light"]})
