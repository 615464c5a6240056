"""``phi4 demo``: materialize the whole graph defined so far, stage by stage, recording the runs
in the Dagster instance (``$DAGSTER_HOME``) so they show in the UI.

A stage (one partition of it) whose assets are all up to date is skipped: materialized, with
their code versions and every input's data version unchanged since (Dagster's own stale status,
which the UI shows as "Unsynced" when it is not). The ``sources`` stage always runs, as it is what
reads the data files; a changed file gives a new data version and everything below it runs again.
``--rerun`` materializes every stage anyway.

A killed run left behind is released before the demo starts (``ops.runs``).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import dagster as dg

from ..ops.runs import HOST_TAG, clean_stale_semaphores, release_dead_runs

@dataclass(frozen=True)
class Stage:
    """One step of the demo: the assets of one group that share a partitioning, materialized
    together (once per partition: each seed shard, PTS domain or evaluation stage)."""

    name: str  # the group, plus the partitions' word where the group is partitioned in part
    keys: tuple[str, ...]  # in graph order
    partitioned_by: str | None  # "shards", "domains", "stages", or None


log = logging.getLogger(__name__)


def _default_dagster_home() -> None:
    """``make demo``'s Dagster home when ``$DAGSTER_HOME`` is unset (``phi4 demo`` run by hand):
    ``<state dir>/dagster_home`` with the project's ``dagster.yaml`` (pools, run queue)."""
    if os.environ.get("DAGSTER_HOME"):
        return
    from ..config.settings import Paths, project_root

    home = Paths.from_env().state_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    config = project_root() / "dagster.yaml"
    if not (home / "dagster.yaml").exists() and config.exists():
        (home / "dagster.yaml").write_text(config.read_text())
    os.environ["DAGSTER_HOME"] = str(home)
    print(f"DAGSTER_HOME is not set: using {home}", flush=True)


def failure_summary(result: dg.ExecuteInProcessResult, stage: str, partition: str | None) -> str:
    """One line per failed step (the asset, the partition, the error's last line), then how to resume."""
    lines = []
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        error = event.step_failure_data.error if event.step_failure_data else None
        while error is not None and error.cause is not None:  # the root cause says what went wrong
            error = error.cause
        message = (error.message.strip().splitlines() or ["?"])[-1] if error else "unknown error"
        lines.append(f"   failed: {event.step_key}" + (f" [partition {partition}]" if partition else "") + f": {message}")
    if not lines:
        lines.append(f"   failed: stage {stage}" + (f" [partition {partition}]" if partition else "")
                     + " (no step failed: see the run's logs in the UI)")
    lines.append(f'   resume with: phi4 demo --from "{stage}"')
    return "\n".join(lines)


@cache
def stages() -> tuple[Stage, ...]:
    """The demo's stages, derived from the definitions (nothing lists the assets again): the assets
    of each group, split by partitioning, in graph order. A stage is named by its group
    ("sources", "sft", "judge"), and a group's partitioned part by the group and what it is
    partitioned by ("hallucination shards", "pts domains", "evaluation stages")."""
    import phi4_assets.defs

    from ..defs.evaluation import stages as evaluation_stages
    from ..defs.partitions import seed_shards
    from ..defs.pts import domains

    words = {id(seed_shards): "shards", id(domains): "domains", id(evaluation_stages): "stages"}
    graph = phi4_assets.defs.load().resolve_asset_graph()
    buckets: dict[tuple[str, str | None], list[str]] = {}
    parents: dict[tuple[str, str | None], set[tuple[str, str | None]]] = {}
    where: dict[dg.AssetKey, tuple[str, str | None]] = {}
    for key in graph.toposorted_asset_keys:
        node = graph.get(key)
        if node.partitions_def is not None and id(node.partitions_def) not in words:
            raise ValueError(f"asset {key.to_user_string()}: the demo does not know its partitions")
        bucket = (node.group_name, words.get(id(node.partitions_def)) if node.partitions_def else None)
        where[key] = bucket
        buckets.setdefault(bucket, []).append(key.to_user_string())
        parents.setdefault(bucket, set()).update(where[p] for p in node.parent_keys if where[p] != bucket)
    ordered: list[tuple[str, str | None]] = []
    while len(ordered) < len(buckets):  # the buckets in graph order (first seen first among the ready)
        ordered.append(next(b for b in buckets if b not in ordered and parents[b] <= set(ordered)))
    return tuple(Stage(f"{group} {word}" if word else group, tuple(buckets[(group, word)]), word)
                 for group, word in ordered)


def selected_stages(stop_after: str | None = None, start_from: str | None = None,
                    select: list[str] | None = None) -> list[Stage]:
    """The stages a demo runs: from ``start_from`` to ``stop_after`` (names of ``stages()``), or only
    the ``select``ed ones, in graph order."""
    every = stages()
    names = [stage.name for stage in every]
    for wanted in (start_from, stop_after, *(select or [])):
        if wanted is not None and wanted not in names:
            raise ValueError(f"unknown stage {wanted!r}; stages: {', '.join(names)}")
    if select:
        if start_from or stop_after:
            raise ValueError("--select names the stages to run; it does not combine with --from / --stop-after")
        return [stage for stage in every if stage.name in select]
    first = names.index(start_from) if start_from else 0
    last = names.index(stop_after) if stop_after else len(names) - 1
    return list(every[first:last + 1])


def dry_run(selected: list[Stage]) -> str:
    """What a demo over ``selected`` stages would run, and the teacher calls and tokens it would make
    (``phi4 estimate`` over the same assets: cache-aware, upper bounds said as such)."""
    from ..defs.evaluation import STAGES as EVAL_STAGES
    from ..defs.pts import DOMAINS
    from ..ops.estimate import estimate, render_text

    parts = {"shards": "each seed shard", "domains": f"each PTS domain ({', '.join(DOMAINS)})",
             "stages": f"each evaluation stage ({', '.join(EVAL_STAGES)})"}
    lines = ["The demo would run, in order:"]
    for stage in selected:
        lines.append(f"  {stage.name}: {', '.join(stage.keys)}"
                     + (f"  [{parts[stage.partitioned_by]}]" if stage.partitioned_by else ""))
    lines += ["", render_text(estimate([k for stage in selected for k in stage.keys]))]
    return "\n".join(lines)


ALWAYS_RUN = ("sources",)  # they read the data files, which Dagster cannot watch


def up_to_date(instance: dg.DagsterInstance, asset_graph, keys: tuple[str, ...], partition: str | None) -> bool:
    """Whether every asset of ``keys`` (in ``partition``) is FRESH by Dagster's stale status:
    materialized, and neither its code version nor an input's data version changed since."""
    from datetime import datetime, timezone

    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus

    view = AssetGraphView(temporal_context=TemporalContext(effective_dt=datetime.now(timezone.utc), last_event_id=None),
                          instance=instance, asset_graph=asset_graph)
    resolver = CachingStaleStatusResolver(instance=instance, asset_graph=asset_graph, loading_context=view)
    return all(resolver.get_status(dg.AssetKey(key), partition) == StaleStatus.FRESH for key in keys)


def run_demo(stop_after: str | None = None, start_from: str | None = None,
             instance: dg.DagsterInstance | None = None, select: list[str] | None = None,
             rerun: bool = False) -> int:
    import phi4_assets.defs

    from ..defs.evaluation import STAGES as EVAL_STAGES
    from ..defs.partitions import register_seed_shards, usable_seed_shard_keys
    from ..defs.pts import DOMAINS

    selected = selected_stages(stop_after, start_from, select)
    defs = phi4_assets.defs.load()
    asset_graph = defs.resolve_asset_graph()
    assets = [*defs.assets, *(defs.asset_checks or [])]
    resources = defs.resources
    if instance is None:
        _default_dagster_home()
        instance = dg.DagsterInstance.get()
    for run_id in release_dead_runs(instance):
        print(f"run {run_id} was left by processes that are gone: marked failed, its pool slots freed")
    clean_stale_semaphores()
    # Like the incoming_seed_files sensor: an unusable incoming seed file is skipped and reported.
    shards = usable_seed_shard_keys(lambda message: print(message, flush=True))
    added = register_seed_shards(instance, shards)
    if added:
        print(f"registered seed shards: {', '.join(added)}", flush=True)
    started = time.monotonic()
    timings = []
    for stage in selected:
        name, keys = stage.name, stage.keys
        selection = [dg.AssetKey(k) for k in keys]
        partitions = {"shards": shards, "domains": DOMAINS, "stages": EVAL_STAGES}.get(stage.partitioned_by, [None])
        for partition in partitions:
            label = f"{name} [{partition}]" if partition else name
            t0 = time.monotonic()
            if not rerun and name not in ALWAYS_RUN and up_to_date(instance, asset_graph, keys, partition):
                print(f"== {label}: up to date, skipped ({', '.join(keys)}; --rerun runs it anyway)", flush=True)
                timings.append((f"{label} (up to date)", time.monotonic() - t0))
                continue
            print(f"== {label}: {', '.join(keys)}", flush=True)
            result = dg.materialize(assets, selection=selection, partition_key=partition, resources=resources,
                                    instance=instance, raise_on_error=False,
                                    tags={HOST_TAG: socket.gethostname(), "phi4/stage": name})
            timings.append((label, time.monotonic() - t0))
            failed_checks = [e.check_name for e in result.get_asset_check_evaluations() if not e.passed]
            print(f"   {'ok' if result.success else 'FAILED'} in {timings[-1][1]:.1f}s"
                  + (f"; failed checks: {', '.join(failed_checks)}" if failed_checks else ""), flush=True)
            if not result.success:
                print(failure_summary(result, name, partition), flush=True)
                return 1
    from ..ops.lineage import create_lineage_view
    from ..config.settings import Paths

    create_lineage_view(Paths.from_env().warehouse, phi4_assets.defs.table_columns())  # phi4.lineage_edges, for SQL users
    print(f"== demo done in {time.monotonic() - started:.1f}s")
    for label, seconds in timings:
        print(f"   {seconds:8.1f}s  {label}")
    print(what_was_made(Paths.from_env()), flush=True)
    return 0


def what_was_made(paths) -> str:
    """The end of a demo, as a user wants it: Table 9, where the figures and loss curves are, how to
    look at it all in the UI."""
    from ..core.duckdb_files import connection, stored_columns
    from ..evaluation.report import ablation_markdown
    from ..ops.lineage import SCHEMA

    lines = []
    with connection(paths.warehouse) as con:
        tables = stored_columns(con, SCHEMA)
        if "ablation_table" in tables:
            table = con.execute(f"SELECT * FROM {SCHEMA}.ablation_table").fetchdf()
            if len(table):
                lines += ["", "Table 9 (ablation_table):", "", ablation_markdown(table)]
        curves = []
        for model in ("sft_model", "dpo1_model", "dpo2_model", "dpo2_only_model"):
            if model in tables:
                for (path,) in con.execute(f"SELECT path FROM {SCHEMA}.{model}").fetchall():
                    curve = Path(path) / "loss_curve.png"
                    if curve.exists():
                        curves.append(f"   {model}: {curve}")
    reports = paths.state_dir / "reports"
    figures = sorted(reports.glob("*.png")) if reports.is_dir() else []
    if figures:
        lines += ["", "Figures (Figure 6 and the PTS search views):", *(f"   {f}" for f in figures)]
    if curves:
        lines += ["", "Loss curves:", *curves]
    lines += ["", "See every asset, its lineage, checks and metadata (figures inline) in the Dagster UI:",
              "   make ui   -> http://127.0.0.1:3000"]
    return "\n".join(lines)
