"""Source validation: every error names the file, the line and the field."""

import json

import pytest

from phi4_assets.sources import schemas
from phi4_assets.sources.records import SourceError, read_records

GOOD = {"id": "t1", "question": "What is the capital of Peru?", "answer": "Lima", "aliases": [],
        "topic": "geography", "difficulty": "easy"}


def write(tmp_path, lines, name="trivia.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n")
    return path


def error_for(tmp_path, lines, spec=schemas.TRIVIA) -> str:
    path = write(tmp_path, lines)
    with pytest.raises(SourceError) as info:
        read_records(path, spec)
    return str(info.value).replace(str(path), "FILE")


def test_reads_valid_records_and_skips_blank_lines(tmp_path):
    path = write(tmp_path, [GOOD, "", {**GOOD, "id": "t2", "aliases": ["Ciudad de los Reyes"]}])
    records = read_records(path, schemas.TRIVIA)
    assert [r["id"] for r in records] == ["t1", "t2"]


@pytest.mark.parametrize("bad_line, message", [
    ('{"id": "t2", "question": ', "FILE:2: not valid JSON (Expecting value at column 26)"),
    ("[1, 2]", "FILE:2: expected a JSON object, got list"),
    ({k: v for k, v in GOOD.items() if k != "answer"} | {"id": "t2"}, "FILE:2: field 'answer': missing"),
    ({**GOOD, "id": "t2", "answer": 7}, "FILE:2: field 'answer': expected a non-empty string, got 7"),
    ({**GOOD, "id": "t2", "answer": "  "}, "FILE:2: field 'answer': expected a non-empty string, got '  '"),
    ({**GOOD, "id": "t2", "aliases": "Lima"}, "FILE:2: field 'aliases': expected a list of non-empty strings, got 'Lima'"),
    ({**GOOD, "id": "t2", "difficulty": "trivial"}, "FILE:2: field 'difficulty': expected one of easy, medium, hard, got 'trivial'"),
    ({**GOOD, "id": "t2", "source": "web"}, "FILE:2: field 'source': unknown field for trivia records"),
    ({**GOOD}, "FILE:2: field 'id': duplicate id 't1' (first on line 1)"),
])
def test_malformed_lines_are_named_precisely(tmp_path, bad_line, message):
    assert error_for(tmp_path, [GOOD, bad_line]) == message


def test_missing_empty_and_non_utf8_files(tmp_path):
    with pytest.raises(SourceError, match=r"nope.jsonl: file not found \(trivia records\)"):
        read_records(tmp_path / "nope.jsonl", schemas.TRIVIA)
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(SourceError, match=r"empty.jsonl: no trivia records"):
        read_records(tmp_path / "empty.jsonl", schemas.TRIVIA)
    (tmp_path / "latin1.jsonl").write_bytes('{"question": "caf\xe9"}'.encode("latin-1"))
    with pytest.raises(SourceError, match=r"latin1.jsonl:1: not UTF-8 text"):
        read_records(tmp_path / "latin1.jsonl", schemas.TRIVIA)


def test_simpleqa_bogus_rows_carry_no_answer(tmp_path):
    real = {"id": "r1", "question": "Q?", "answer": "A", "aliases": [], "bogus": False, "topic": "history"}
    bogus = {"id": "b1", "question": "B?", "answer": None, "aliases": [], "bogus": True, "topic": "history"}
    assert len(read_records(write(tmp_path, [real, bogus]), schemas.SIMPLEQA)) == 2
    assert error_for(tmp_path, [real, {**bogus, "answer": "X"}], schemas.SIMPLEQA) == \
        "FILE:2: field 'answer': a bogus question has answer null and no aliases"
    assert error_for(tmp_path, [{**real, "answer": None}], schemas.SIMPLEQA) == \
        "FILE:1: field 'answer': a real question needs an answer"


def test_mcq_choices_must_be_four_distinct_options(tmp_path):
    good = {"id": "m1", "question": "Q?", "choices": {"A": "1", "B": "2", "C": "3", "D": "4"}, "answer": "B",
            "subject": "mathematics"}
    assert read_records(write(tmp_path, [good]), schemas.MCQ)[0]["answer"] == "B"
    assert error_for(tmp_path, [{**good, "choices": {"A": "1", "B": "2", "C": "3"}}], schemas.MCQ).startswith(
        "FILE:1: field 'choices': expected an object with keys A, B, C, D")
    assert error_for(tmp_path, [{**good, "choices": {"A": "1", "B": "1", "C": "3", "D": "4"}}], schemas.MCQ) == \
        "FILE:1: field 'choices': the four choices must differ"
    assert error_for(tmp_path, [{**good, "answer": "E"}], schemas.MCQ) == \
        "FILE:1: field 'answer': expected one of A, B, C, D, got 'E'"


def test_safety_pairs_must_cross_reference(tmp_path):
    h = {"id": "h1", "prompt": "bad", "kind": "harmful", "category": "theft", "pair": "b1"}
    b = {"id": "b1", "prompt": "fine", "kind": "benign", "category": "theft", "pair": "h1"}
    assert len(read_records(write(tmp_path, [h, b]), schemas.SAFETY)) == 2
    assert error_for(tmp_path, [h, {**b, "pair": "h9"}], schemas.SAFETY) == \
        "FILE:1: field 'pair': 'b1' pairs with 'h9', not back with 'h1'"
    assert error_for(tmp_path, [{**h, "pair": "x"}, b], schemas.SAFETY) == \
        "FILE:1: field 'pair': no record with id 'x' in this file"
    assert error_for(tmp_path, [h, {**b, "kind": "harmful"}], schemas.SAFETY) == \
        "FILE:1: field 'pair': a harmful prompt must pair with a prompt of the other kind"
