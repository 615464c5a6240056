import pytest

from phi4_assets.pts.oracles import (ORACLES, code_oracle, extract_choice, extract_final_number, math_oracle,
                                     mcq_oracle, qa_oracle)
from phi4_assets.sources.humaneval import read_humaneval


@pytest.mark.parametrize("text, number", [
    ("15 - 3 = 12 apples left, then 12 + 5 = 17. The answer is 17.", "17"),  # not the first "="
    ("3 * 4 = 12\n#### 12 ... wait: 12 + 1 = 13\n#### 13", "13"),  # the last marker
    ("She pays $1,234.00 in total.", "1234"),
    ("The average is 42.5", "42.5"),
    ("Answer: -7", "-7"),
    ("\\boxed{96}", "96"),
    ("I am not sure.", None),
])
def test_final_number(text, number):
    assert extract_final_number(text) == number


def test_math_oracle_compares_numbers_exactly():
    assert math_oracle("So the answer is 17.0", "17")
    assert not math_oracle("17 + 1 = 18", "17")


@pytest.mark.parametrize("text, letter", [
    ("B) Paris", "B"), ("(C) because ...", "C"), ("D.", "D"), ("**A**", "A"), ("C", "C"),
    ("I think the answer is (B).", "B"), ("Answer: D", "D"),
    ("A cat is an animal, so ...", None), ("None of them.", None),
])
def test_choice_extraction(text, letter):
    assert extract_choice(text) == letter


def test_mcq_and_qa_oracles():
    assert mcq_oracle("The answer is B", "B") and not mcq_oracle("A) Rome", "B")
    assert qa_oracle("It is Lima, the capital.", "Lima", [])
    assert not qa_oracle("Limassol is in Cyprus.", "Lima", [])
    assert qa_oracle("the Pacific", "Pacific Ocean", ["Pacific"])


def test_code_oracle_body_or_full_function():
    problem = read_humaneval()[0]
    args = (problem["prompt"], problem["tests"], problem["entry_point"])
    assert code_oracle(problem["canonical_solution"], *args)
    full = "```python\n" + problem["prompt"] + problem["canonical_solution"] + "```"
    assert code_oracle(full, *args)
    assert not code_oracle("    return None\n", *args)
    assert ORACLES["code"](problem["canonical_solution"], problem)
    assert ORACLES["math"]("#### 5", {"answer": "5"}) and ORACLES["qa"]("Paris", {"answer": "Paris"})
