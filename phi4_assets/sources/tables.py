"""The source tables as the ``sources`` assets make them, from the shipped (or configured) files.
Pure: the assets (``defs/sources.py``) and ``phi4 estimate`` (which counts teacher calls before
anything is materialized) both read the sources through here, so the two cannot drift.

Each function takes a ``SourceFiles`` (the profile and the data folder) and returns the table's
rows as a frame and the files it read."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config.profiles import Profile
from . import schemas
from .humaneval import read_humaneval, split_humaneval
from .mathgen import generate_math_problems
from .records import read_records
from .seedfiles import incoming_files
from .shards import SHIPPED, set_name


@dataclass(frozen=True)
class SourceFiles:
    """Where the source files are: ``data_dir`` unless the profile's ``data_files`` names one."""

    profile: Profile
    data_dir: Path

    def data_file(self, key: str, default_relative: str) -> Path:
        """A data file: the profile's ``data_files[key]`` if set, else ``data_dir/default_relative``."""
        override = self.profile.data_files.get(key)
        return Path(override) if override else Path(self.data_dir) / default_relative

    def limit(self, rows: list) -> list:
        """The first ``source_limit`` rows (all without one)."""
        n = self.profile.source_limit
        return rows if n is None else rows[:n]


def registered_incoming(incoming_dir: Path | None, registered: set[str]) -> tuple[
        list[tuple[str, Path]], list[str], list[Path]]:
    """The incoming seed files ``trivia_seeds`` reads: (seed set, path) of each file in
    ``incoming_dir`` whose first shard is among the ``registered`` partition keys; then the
    reasons of the files whose names make no seed set, and the files not registered yet."""
    kept, ignored, waiting = [], [], []
    for path in incoming_files(Path(incoming_dir)) if incoming_dir else []:
        try:
            name = set_name(path.stem)
        except ValueError as e:
            ignored.append(str(e))
            continue
        if f"{name}-000" in registered:
            kept.append((name, path))
        else:
            waiting.append(path)
    return kept, ignored, waiting


def trivia_seeds(files: SourceFiles, incoming: Iterable[tuple[str, Path]] = ()) -> tuple[pd.DataFrame, list[Path]]:
    """The shipped seed questions (``seed_set`` = shipped) and those of each registered incoming
    file, given as (seed set name, path). An id used by two files is an error naming both."""
    path = files.data_file("trivia", "seeds/trivia.jsonl")
    rows = [dict(r, seed_set=SHIPPED) for r in files.limit(read_records(path, schemas.TRIVIA))]
    read = [path]
    for name, incoming_path in incoming:
        rows += [dict(r, seed_set=name) for r in read_records(incoming_path, schemas.TRIVIA)]
        read.append(incoming_path)
    frame = pd.DataFrame(rows)
    dupes = frame[frame["id"].duplicated(keep=False)]
    if len(dupes):
        where = dupes.groupby("id")["seed_set"].apply(lambda s: " and ".join(s)).head(5).to_dict()
        raise ValueError(f"trivia seed ids used twice: {where} (seed sets: {SHIPPED} = {path}, others = "
                         f"incoming files by name)")
    return frame, read


def mcq_questions(files: SourceFiles) -> tuple[pd.DataFrame, list[Path]]:
    path = files.data_file("mcq", "seeds/mcq.jsonl")
    return pd.DataFrame(files.limit(read_records(path, schemas.MCQ))), [path]


def math_problems(files: SourceFiles) -> tuple[pd.DataFrame, list[Path]]:
    """The seeded generator's training problems (no file)."""
    profile = files.profile
    return pd.DataFrame(generate_math_problems(profile.math_train, seed=profile.math_seed)), []


def code_problems(files: SourceFiles) -> tuple[pd.DataFrame, list[Path]]:
    """HumanEval's odd-numbered tasks (the even ones are held out in ``eval_sets``)."""
    training, _ = split_humaneval(read_humaneval())
    return pd.DataFrame(files.limit(training)), []


def _safety_records(path: Path, files: SourceFiles) -> list[dict]:
    """The first ``source_limit`` harmful prompts and the benign look-alike of each."""
    records = read_records(path, schemas.SAFETY)
    keep = {r["id"] for r in files.limit([r for r in records if r["kind"] == "harmful"])}
    return [r for r in records if r["id"] in keep or r["pair"] in keep]


def safety_prompts(files: SourceFiles) -> tuple[pd.DataFrame, list[Path]]:
    path = files.data_file("safety", "seeds/safety.jsonl")
    return pd.DataFrame(_safety_records(path, files)), [path]


def chat_prompts(files: SourceFiles) -> tuple[pd.DataFrame, list[Path]]:
    path = files.data_file("chat", "seeds/chat.jsonl")
    return pd.DataFrame(files.limit(read_records(path, schemas.CHAT))), [path]


def eval_sets(files: SourceFiles) -> tuple[pd.DataFrame, list[Path]]:
    """The held-out splits, one ``benchmark`` per split: simpleqa (real, then bogus), mcq, math
    (generated apart from the training problems), code (HumanEval's even tasks) and safety."""
    profile = files.profile
    paths = {name: files.data_file(f"eval_{name}", f"eval/{name}.jsonl") for name in ("simpleqa", "mcq", "safety")}
    rows: list[dict] = []
    simpleqa = read_records(paths["simpleqa"], schemas.SIMPLEQA)
    for r in files.limit([r for r in simpleqa if not r["bogus"]]) + files.limit([r for r in simpleqa if r["bogus"]]):
        rows.append({"id": r["id"], "benchmark": "simpleqa", "question": r["question"], "answer": r["answer"],
                     "aliases": r["aliases"], "bogus": r["bogus"], "category": r["topic"]})
    for r in files.limit(read_records(paths["mcq"], schemas.MCQ)):
        rows.append({"id": r["id"], "benchmark": "mcq", "question": r["question"], "answer": r["answer"],
                     "choices": r["choices"], "category": r["subject"]})
    train_math = {p["question"] for p in generate_math_problems(profile.math_train, seed=profile.math_seed)}
    for p in generate_math_problems(profile.math_eval, seed=profile.math_seed + 1, exclude=train_math,
                                    id_prefix="math-eval"):
        rows.append({"id": p["id"], "benchmark": "math", "question": p["question"], "answer": p["answer"],
                     "category": f"level-{p['difficulty']}"})
    for p in files.limit(split_humaneval(read_humaneval())[1]):
        rows.append({"id": p["id"], "benchmark": "code", "question": p["prompt"], "tests": p["tests"],
                     "entry_point": p["entry_point"], "category": "humaneval"})
    for r in _safety_records(paths["safety"], files):
        rows.append({"id": r["id"], "benchmark": "safety", "question": r["prompt"], "category": r["kind"]})
    frame = pd.DataFrame(rows)
    frame = frame.reindex(columns=list(dict.fromkeys([*frame.columns, "aliases", "bogus"])))
    frame["bogus"] = frame["bogus"].astype("boolean").fillna(False).astype(bool)
    frame["aliases"] = [list(a) if isinstance(a, list) else [] for a in frame["aliases"]]
    return frame, list(paths.values())
