"""The estimate's data: what each asset would ask (``Plan``), one line of the result (``Line``),
the result (``Estimate``) and its inputs (``Inputs``: warehouse, data files, teacher cache)."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from ...core.duckdb_files import connection, stored_columns
from .cost import PromptCounter, prompt_counter
from ..lineage import SCHEMA
from ...config.profiles import Profile
from ...config.settings import Paths
from ...sources import tables
from ...sources.tables import SourceFiles
from ...teacher import ChatRequest
from ...teacher.resource import TeacherResource


@dataclass(frozen=True)
class GraphAsset:
    """What the estimate needs to know of one asset of the definitions."""
    name: str
    group: str
    teacher: bool  # it takes the teacher resource
    sharded: bool  # partitioned by seed shards


@dataclass
class Plan:
    """What one asset would ask the teacher, for one partition and task (internal)."""

    asset: str
    partition: str | None
    task: str
    generator: str
    max_tokens: int | None = None
    requests: list[ChatRequest] | None = None  # exact
    bound: int | None = None  # upper bound on requests, when not exact
    basis: str = ""


@dataclass
class Line:
    asset: str
    partition: str | None
    task: str
    generator: str
    requests: int | None
    requests_basis: str  # "exact" | "upper bound" | "unknown" | "none"
    calls: int | None
    cached: int | None
    to_call: int | None
    tokens_per_call: float | None
    tokens: int | None
    tokens_basis: str  # of the completion tokens: "measured" | "upper bound" | "unknown" | "none"
    tokens_note: str = ""
    note: str = ""
    prompt_tokens: int | None = None
    prompt_basis: str = "unknown"  # "counted" | "approximation" | "measured" | "unknown" | "none"
    completion_tokens: int | None = None
    cost: float | None = None  # USD; of the completion tokens alone where prompt_tokens is None
    unpriced: list[str] = field(default_factory=list)  # models asked without a teacher_prices entry

    @property
    def tokens_are_upper_bound(self) -> bool:
        return self.tokens_basis == "upper bound" or (
            self.tokens is not None and (self.requests_basis == "upper bound" or self.cached is None))

    @property
    def tokens_are_partial(self) -> bool:
        """``tokens`` (and ``cost``) leave out prompt tokens nobody could count."""
        return bool(self.tokens) and self.prompt_tokens is None


@dataclass
class Estimate:
    profile: str
    teacher: str | None  # the cache identity of the teacher (None: unknown)
    teacher_note: str
    priced_model: str = ""  # the teacher's model name in teacher_prices
    price: dict[str, float] | None = None  # its price (None: not set)
    prompt_note: str = ""  # which tokenizer counts prompt tokens, or why none does
    lines: list[Line] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # selected assets without teacher calls: why

    def totals(self) -> dict:
        def total(name):
            values = [getattr(line, name) for line in self.lines]
            return {"value": sum(v for v in values if v is not None), "complete": all(v is not None for v in values)}
        def counted(name):  # tokens and cost: also incomplete where prompt tokens are left out
            out = total(name)
            out["complete"] = out["complete"] and not any(line.tokens_are_partial for line in self.lines)
            return out
        return {"requests": total("requests"), "calls": total("calls"), "cached": total("cached"),
                "to_call": total("to_call"), "tokens": counted("tokens"), "prompt_tokens": total("prompt_tokens"),
                "completion_tokens": total("completion_tokens"),
                "tokens_upper_bound": any(line.tokens_are_upper_bound for line in self.lines),
                "cost": counted("cost"), "cost_upper_bound": any(line.tokens_are_upper_bound and line.cost
                                                      for line in self.lines)}

    def to_json(self) -> dict:
        return {"profile": self.profile, "teacher": self.teacher, "teacher_note": self.teacher_note,
                "priced_model": self.priced_model, "price": self.price, "prompt_note": self.prompt_note,
                "lines": [{**asdict(line), "tokens_upper_bound": line.tokens_are_upper_bound,
                           "tokens_partial": line.tokens_are_partial} for line in self.lines],
                "no_teacher_calls": self.skipped, "totals": self.totals()}


# -- inputs ----------------------------------------------------------------------------------------


def registered_seed_shards() -> set[str]:
    """The seed shard partitions registered in the Dagster instance at ``DAGSTER_HOME`` (none
    without one: then only the shipped seeds count)."""
    import dagster as dg

    home = os.environ.get("DAGSTER_HOME")
    if not (home and os.path.isdir(home)):
        return set()
    with dg.DagsterInstance.get() as instance:
        return set(instance.get_dynamic_partitions("seed_shards"))


class Inputs:
    """The current warehouse tables, the shipped sources, the teacher resource and its cache."""

    def __init__(self, profile: Profile, paths: Paths):
        self.profile, self.paths = profile, paths
        self.teacher = TeacherResource.from_profile(profile, paths)
        self.files = SourceFiles(profile, paths.data_dir)
        self._frames: dict[str, pd.DataFrame | None] = {}
        self._tables: dict[str, list[str]] | None = None
        self._identity: tuple[str | None, str] | None = None
        self._token_stats: pd.DataFrame | None = None
        self._prompts: PromptCounter | None = None

    # tables
    def table(self, name: str) -> pd.DataFrame | None:
        """A warehouse table as it is now (None: not materialized)."""
        if name not in self._frames:
            self._frames[name] = None
            if self.paths.warehouse.exists():
                with connection(self.paths.warehouse) as con:
                    if self._tables is None:
                        self._tables = stored_columns(con, SCHEMA)
                    if name in self._tables:
                        self._frames[name] = con.execute(f'SELECT * FROM {SCHEMA}."{name}"').fetchdf()
        return self._frames[name]

    def source(self, name: str) -> tuple[pd.DataFrame, str]:
        """A source table: the warehouse's, else what the source asset would make from the shipped files."""
        frame = self.table(name)
        if frame is not None:
            return frame, "warehouse"
        if name == "trivia_seeds":  # the one source that reads the instance (registered seed files)
            frame, _ = tables.trivia_seeds(self.files, tables.registered_incoming(
                self.paths.incoming_dir, registered_seed_shards())[0])
        else:
            frame, _ = getattr(tables, name)(self.files)
        self._frames[name] = frame
        return frame, "data files"

    def shard_questions(self) -> dict[str, pd.DataFrame]:
        """The seed questions of each shard, as the hallucination assets cut them."""
        from ...sources.shards import assign_shards, shard_keys

        trivia, _ = self.source("trivia_seeds")
        shards = assign_shards(trivia, self.profile.shard_size, self.profile.hallucination_seeds)
        return {key: trivia[shards == key].sort_values("id").reset_index(drop=True)
                for key in shard_keys(trivia, self.profile.shard_size, self.profile.hallucination_seeds)}

    def base_model_dir(self) -> Path | None:
        """The materialized ``base_model`` directory (None: not materialized, or gone)."""
        base = self.table("base_model")
        path = Path(base.iloc[0]["path"]) if base is not None and len(base) == 1 else None
        return path if path is not None and path.is_dir() else None

    # the teacher
    @property
    def teacher_name(self) -> str:
        """The teacher's model name, as ``teacher_prices`` knows it: the endpoint's model, or
        for the embedded teacher the ``base_model`` it serves."""
        return self.profile.base_model if self.teacher.embedded else (self.teacher.model or "default")

    def model_of(self, request: ChatRequest) -> str:
        """The model name a request is priced at (another model at the endpoint, or the teacher)."""
        return request.model if request.model is not None and request.model != self.teacher.model \
            else self.teacher_name

    def prompts(self) -> PromptCounter:
        """Counts prompt tokens: with the base model's tokenizer, the teacher's own when embedded."""
        if self._prompts is None:
            self._prompts = prompt_counter(self.base_model_dir(), self.teacher.embedded, self.teacher_name)
        return self._prompts

    def identity(self) -> tuple[str | None, str]:
        """The teacher's cache identity, and how it was found."""
        if self._identity is None:
            if not self.teacher.embedded:
                self._identity = (self.teacher.model_identity(), f"configured endpoint {self.teacher.base_url}")
            else:
                path = self.base_model_dir()
                if path is None:
                    self._identity = (None, "embedded teacher over base_model, which is not materialized: its cache "
                                            "identity (a digest of the weights) is unknown, so cache hits are unknown")
                else:
                    self._identity = (self.teacher.model_identity(str(path)), f"embedded teacher over {path}")
        return self._identity

    def key(self, identity: str, request: ChatRequest) -> str:
        """The teacher cache key of a request (as ``TeacherResource.complete`` computes it). A
        request for another model is keyed by that model's name, also where the embedded
        teacher could not serve it (the estimate still counts what it would ask)."""
        if request.model is not None and request.model != self.teacher.model:
            identity, request = request.model, dataclasses.replace(request, model=None)
        return self.teacher.request_key(request, identity)[0]

    def cached(self, keys: list[str]) -> set[str]:
        """The keys the teacher cache answers."""
        from ...teacher.cache import TeacherCache

        return set(TeacherCache(self.paths.teacher_cache).lookup(keys)) if keys else set()

    def tokens_per_call(self, task: str, identity: str | None) -> tuple[tuple[float, float] | None, str]:
        """Mean (prompt, completion) tokens of the task's successful cached calls, and what it is."""
        if self._token_stats is None:
            self._token_stats = pd.DataFrame(columns=["model", "task", "n", "prompt", "completion"])
            if self.paths.teacher_cache.exists():
                with connection(self.paths.teacher_cache) as con:
                    if "teacher_calls" in stored_columns(con):
                        self._token_stats = con.execute(
                            "SELECT model, task, count(*) AS n, sum(prompt_tokens) AS prompt, "
                            "sum(completion_tokens) AS completion FROM teacher_calls "
                            "WHERE error IS NULL AND response IS NOT NULL GROUP BY model, task").fetchdf()
        stats = self._token_stats[self._token_stats["task"] == task]
        same = stats[stats["model"] == identity] if identity else stats.iloc[0:0]
        rows, whose = (same, "this teacher") if len(same) else (stats, "any model")
        n = int(rows["n"].sum()) if len(rows) else 0
        total = float(rows["prompt"].fillna(0).sum() + rows["completion"].fillna(0).sum()) if n else 0.0
        if not n or total == 0:
            return None, f"no cached {task} calls with token usage"
        mean_prompt = float(rows["prompt"].fillna(0).sum()) / n
        mean_completion = float(rows["completion"].fillna(0).sum()) / n
        return (mean_prompt, mean_completion), (f"measured: mean {mean_prompt:.0f}+{mean_completion:.0f} tokens "
                                                f"over {n} cached {task} calls ({whose})")


# -- what each asset would ask -------------------------------------------------------------------
