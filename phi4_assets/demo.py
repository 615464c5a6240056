"""``phi4 demo``: materialize the whole graph defined so far, stage by stage, recording the runs
in the Dagster instance (``$DAGSTER_HOME``) so they show in the UI."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import dagster as dg

import phi4_assets.defs

from .defs.partitions import register_seed_shards, usable_seed_shard_keys
from .defs.evaluation import STAGES as EVAL_STAGES
from .defs.pts import DOMAINS

# (stage name, asset keys, partitions: False, True = seed shards, "domains" = PTS domains,
#  "stages" = evaluation stages)
STAGES: list[tuple[str, list[str], bool | str]] = [
    ("sources", ["trivia_seeds", "math_problems", "mcq_questions", "code_problems", "safety_prompts",
                 "chat_prompts", "eval_sets", "base_model"], False),
    ("hallucination shards", ["policy_answer_samples", "answer_checks", "reference_answers", "bogus_questions",
                              "refusals"], True),
    ("hallucination data", ["hallucination_sft_data", "hallucination_dpo_pairs"], False),
    ("sft", ["sft_dataset", "sft_model"], False),
    ("pts domains", ["pts_difficulty", "pivotal_tokens"], "domains"),
    ("pts", ["dpo1_mix_pairs", "pts_dpo_pairs", "dpo1_model"], False),
    ("judge", ["judge_candidates", "judge_ratings", "dpo2_mix_pairs", "judge_dpo_pairs", "dpo2_model",
               "dpo2_only_model"], False),
    ("evaluation stages", ["stage_evaluations"], "stages"),
    ("evaluation", ["ablation_table", "simpleqa_evolution"], False),
]


HOST_TAG = "phi4/host"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def release_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the runs that ``phi4 demo`` on this host left "started" in a process that no
    longer exists (a demo killed mid-run), and free the pool slots they held: otherwise every
    later step of their pools waits for a slot that is never given back. Runs of live processes,
    and runs launched elsewhere (the UI, the daemon, another host) are left to Dagster."""
    released = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING,
                                                                  dg.DagsterRunStatus.STARTED],
                                                        tags={HOST_TAG: socket.gethostname()})):
        pids = {e.dagster_event.pid for e in instance.all_logs(run.run_id) if e.dagster_event and e.dagster_event.pid}
        if pids and not any(_alive(pid) for pid in pids):
            instance.report_run_failed(run)
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
            released.append(run.run_id)
    return released


def _default_dagster_home() -> None:
    """``make demo``'s Dagster home when ``$DAGSTER_HOME`` is unset (``phi4 demo`` run by hand):
    ``<state dir>/dagster_home`` with the project's ``dagster.yaml`` (pools, run queue)."""
    if os.environ.get("DAGSTER_HOME"):
        return
    from .settings import Paths, project_root

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


def selected_stages(stop_after: str | None = None, start_from: str | None = None,
                    select: list[str] | None = None) -> list[tuple[str, list[str], bool | str]]:
    """The stages a demo runs: from ``start_from`` to ``stop_after`` (names of ``STAGES``), or only
    the ``select``ed ones, in graph order."""
    names = [name for name, _, _ in STAGES]
    for wanted in (start_from, stop_after, *(select or [])):
        if wanted is not None and wanted not in names:
            raise ValueError(f"unknown stage {wanted!r}; stages: {', '.join(names)}")
    if select:
        if start_from or stop_after:
            raise ValueError("--select names the stages to run; it does not combine with --from / --stop-after")
        return [stage for stage in STAGES if stage[0] in select]
    first = names.index(start_from) if start_from else 0
    last = names.index(stop_after) if stop_after else len(names) - 1
    return STAGES[first:last + 1]


def dry_run(stages: list[tuple[str, list[str], bool | str]]) -> str:
    """What a demo over ``stages`` would run, and the teacher calls and tokens it would make
    (``phi4 estimate`` over the same assets: cache-aware, upper bounds said as such)."""
    from .estimate import estimate, render_text

    parts = {True: "each seed shard", "domains": f"each PTS domain ({', '.join(DOMAINS)})",
             "stages": f"each evaluation stage ({', '.join(EVAL_STAGES)})"}
    lines = ["The demo would run, in order:"]
    for name, keys, sharded in stages:
        lines.append(f"  {name}: {', '.join(keys)}" + (f"  [{parts[sharded]}]" if sharded else ""))
    lines += ["", render_text(estimate([k for _, keys, _ in stages for k in keys]))]
    return "\n".join(lines)


def run_demo(stop_after: str | None = None, start_from: str | None = None,
             instance: dg.DagsterInstance | None = None, select: list[str] | None = None) -> int:
    stages = selected_stages(stop_after, start_from, select)
    defs = phi4_assets.defs.load()
    assets = [*defs.assets, *(defs.asset_checks or [])]
    resources = defs.resources
    if instance is None:
        _default_dagster_home()
        instance = dg.DagsterInstance.get()
    for run_id in release_dead_runs(instance):
        print(f"run {run_id} was left started by a process that is gone: marked failed, its pool slots freed")
    # Like the incoming_seed_files sensor: an unusable incoming seed file is skipped and reported.
    shards = usable_seed_shard_keys(lambda message: print(message, flush=True))
    added = register_seed_shards(instance, shards)
    if added:
        print(f"registered seed shards: {', '.join(added)}", flush=True)
    started = time.monotonic()
    timings = []
    for name, keys, sharded in stages:
        selection = [dg.AssetKey(k) for k in keys]
        partitions = {True: shards, "domains": DOMAINS, "stages": EVAL_STAGES}.get(sharded, [None])
        for partition in partitions:
            label = f"{name} [{partition}]" if partition else name
            print(f"== {label}: {', '.join(keys)}", flush=True)
            t0 = time.monotonic()
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
    from .lineage import create_lineage_view
    from .settings import Paths

    create_lineage_view(Paths.from_env().warehouse, phi4_assets.defs.table_columns())  # phi4.lineage_edges, for SQL users
    print(f"== demo done in {time.monotonic() - started:.1f}s")
    for label, seconds in timings:
        print(f"   {seconds:8.1f}s  {label}")
    print(what_was_made(Paths.from_env()), flush=True)
    return 0


def what_was_made(paths) -> str:
    """The end of a demo, as a user wants it: Table 9, where the figures and loss curves are, how to
    look at it all in the UI."""
    from .duckdb_files import connection, stored_columns
    from .evaluation.report import ablation_markdown
    from .lineage import SCHEMA

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
