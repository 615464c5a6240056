"""The shipped data files: valid, big enough, and disjoint between training and evaluation."""

from collections import Counter

from phi4_assets.config.settings import REPO_ROOT
from phi4_assets.sources import schemas
from phi4_assets.sources.humaneval import is_eval_task, read_humaneval
from phi4_assets.sources.records import MAX_FILE_BYTES, MAX_LINE_BYTES, read_records
from phi4_assets.core.text import normalize_question

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


def test_shipped_seeds_sit_well_inside_the_limits_set_for_incoming_seed_files():
    """The limits bound a user's seed file; the shipped one is far from them (a tenth at most),
    and its questions are distinct once normalised, as an incoming file's must be from them."""
    for path in sorted(DATA.glob("*/*.jsonl")):
        assert path.stat().st_size < MAX_FILE_BYTES / 10, path
        assert max(map(len, path.read_bytes().splitlines())) < MAX_LINE_BYTES / 10, path
    trivia = read_records(DATA / "seeds/trivia.jsonl", schemas.TRIVIA)
    assert max(len(r["question"]) for r in trivia) < schemas.MAX_QUESTION_CHARS / 5
    assert max(len(a) for r in trivia for a in [r["answer"], *r["aliases"]]) < schemas.MAX_ANSWER_CHARS / 2
    assert max(len(r["aliases"]) for r in trivia) < schemas.MAX_ALIASES / 5
    questions = Counter(normalize_question(r["question"]) for r in trivia)
    assert questions.most_common(1)[0][1] == 1
