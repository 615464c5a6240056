"""The shipped data files: valid, big enough, and disjoint between training and evaluation."""

from collections import Counter

from phi4_assets.settings import REPO_ROOT
from phi4_assets.sources import schemas
from phi4_assets.sources.humaneval import is_eval_task, read_humaneval
from phi4_assets.sources.records import read_records

DATA = REPO_ROOT / "data"


def test_seed_files_meet_their_sizes():
    trivia = read_records(DATA / "seeds/trivia.jsonl", schemas.TRIVIA)
    assert len(trivia) >= 400
    assert len(Counter(r["topic"] for r in trivia)) >= 12
    assert set(Counter(r["difficulty"] for r in trivia)) == {"easy", "medium", "hard"}
    assert len(read_records(DATA / "seeds/mcq.jsonl", schemas.MCQ)) >= 200
    safety = Counter(r["kind"] for r in read_records(DATA / "seeds/safety.jsonl", schemas.SAFETY))
    assert safety["harmful"] >= 60 and safety["benign"] >= 60
    assert len(read_records(DATA / "seeds/chat.jsonl", schemas.CHAT)) >= 200


def test_eval_files_meet_their_sizes():
    simpleqa = Counter(r["bogus"] for r in read_records(DATA / "eval/simpleqa.jsonl", schemas.SIMPLEQA))
    assert simpleqa[False] >= 150 and simpleqa[True] >= 100
    assert len(read_records(DATA / "eval/mcq.jsonl", schemas.MCQ)) >= 100
    assert len(read_records(DATA / "eval/safety.jsonl", schemas.SAFETY)) >= 40


def test_mcq_keys_are_balanced():
    keys = Counter(r["answer"] for r in read_records(DATA / "seeds/mcq.jsonl", schemas.MCQ))
    assert all(0.2 <= keys[letter] / sum(keys.values()) <= 0.3 for letter in "ABCD")


def test_humaneval_ships_and_splits_in_half():
    problems = read_humaneval()
    assert len(problems) == 164
    assert sum(is_eval_task(p["id"]) for p in problems) == 82
