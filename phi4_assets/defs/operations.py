"""Running the graph unattended: new seed files, scheduled generation within a teacher budget,
and retraining when training data changed.

- ``incoming_seed_files`` (sensor): a valid ``*.jsonl`` trivia file dropped into the incoming
  folder becomes new seed shards (``<file>-000``, ...) and ``trivia_seeds`` is re-materialized
  to take it in. An unusable file (see ``phi4_assets.sources.seedfiles``: not a regular file, too
  big, not UTF-8, a malformed or oversized record, an id or question already used) is reported
  (``ignored: FILE:LINE: field 'F': problem``) and skipped, as ``phi4 demo`` does.
- ``seed_generation_schedule``: each tick, the next seed shards whose generation assets are not
  materialized yet, as many as fit in ``schedule_token_budget`` teacher tokens (estimated from
  the cache and the profile by ``phi4_assets.ops.estimate``), one run per shard.
- ``phi4_automation`` (declarative automation): the hallucination data and the SFT mixture
  follow new shards (``eager``); each model asset retrains when its training data's data version
  changed (``retrain_when_data_changes``), not on every tick.

All three start stopped: turn them on in the UI (Automation) or with ``dagster sensor start`` /
``dagster schedule start``.
"""

from __future__ import annotations

import dagster as dg

from .resources import ProjectResource
from ..config.settings import Paths
from .hallucination import SHARDED_ASSETS, refusals
from .partitions import seed_shards, usable_seed_shard_keys
from .sources import trivia_seeds

RUNNING = (dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
           dg.DagsterRunStatus.STARTED)


@dg.sensor(name="incoming_seed_files", minimum_interval_seconds=30, target=[trivia_seeds],
           default_status=dg.DefaultSensorStatus.STOPPED,
           description="Registers each valid trivia seed file in the incoming folder as new seed shards.")
def incoming_seed_files(context: dg.SensorEvaluationContext):
    errors: list[str] = []
    keys = usable_seed_shard_keys(errors.append)
    for message in errors:
        context.log.warning(message)
    registered = set(context.instance.get_dynamic_partitions(seed_shards.name))
    new = [k for k in keys if k not in registered]
    if not new:
        return dg.SkipReason("; ".join([f"no new seed file in {Paths.from_env().incoming_dir}", *errors]))
    context.log.info(f"registering seed shards {', '.join(new)}")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"seeds:{','.join(new)}", asset_selection=[trivia_seeds.key])],
        dynamic_partitions_requests=[seed_shards.build_add_request(new)])


def shards_to_generate(pending: list[str], tokens: dict[str, int | None], budget: int) -> tuple[list[str], str]:
    """The pending shards, in order, whose estimated teacher tokens fit in ``budget`` together.

    A shard whose estimate is unknown is charged the whole budget. A shard that alone needs more
    than the budget is passed over (the reason names it: raise the budget or run it by hand), so
    it cannot hold back the shards after it."""
    picked, skipped, spent = [], [], 0
    for shard in pending:
        cost = tokens.get(shard)
        cost = budget if cost is None else cost
        if cost > budget:
            skipped.append(f"{shard} ({cost})")
            continue
        if spent + cost > budget:
            break
        picked.append(shard)
        spent += cost
    reason = f"{len(picked)} shard(s), about {spent} of {budget} teacher tokens"
    if skipped:
        reason += f"; over the budget alone: {', '.join(skipped)}"
    return picked, reason


def _shard_tokens(shards: list[str]) -> dict[str, int | None]:
    """Estimated teacher tokens per shard; shards that ``trivia_seeds`` does not hold yet (a file
    registered a moment ago) are left out."""
    from ..ops.estimate import estimate

    result = estimate([a.key.path[-1] for a in SHARDED_ASSETS if a.key.path[-1] != "policy_answer_samples"])
    tokens: dict[str, int | None] = {}
    for line in result.lines:
        if line.partition in shards:
            known = tokens.get(line.partition, 0)
            tokens[line.partition] = None if known is None or line.tokens is None else known + line.tokens
    return tokens


@dg.schedule(name="seed_generation_schedule", cron_schedule="0 * * * *", target=SHARDED_ASSETS,
             default_status=dg.DefaultScheduleStatus.STOPPED,
             description="Hourly: the next unmaterialized seed shards, within the teacher-token budget per tick.")
def seed_generation_schedule(context: dg.ScheduleEvaluationContext, project: ProjectResource):
    budget = project.settings().schedule_token_budget
    instance = context.instance
    done = instance.get_materialized_partitions(refusals.key)
    running = {r.tags.get("dagster/partition") for r in instance.get_runs(
        filters=dg.RunsFilter(statuses=list(RUNNING), tags={"phi4/schedule": "seed_generation"}))}
    pending = [k for k in instance.get_dynamic_partitions(seed_shards.name) if k not in done and k not in running]
    if not pending:
        return dg.SkipReason("every registered seed shard is generated or running")
    tokens = _shard_tokens(pending)
    waiting = [k for k in pending if k not in tokens]
    picked, reason = shards_to_generate([k for k in pending if k in tokens], tokens, budget)
    if waiting:
        reason += f"; not in trivia_seeds yet: {', '.join(waiting)}"
    context.log.info(reason)
    if not picked:
        return dg.SkipReason(reason)
    return [dg.RunRequest(partition_key=k, tags={"phi4/schedule": "seed_generation"}) for k in picked]


automation = dg.AutomationConditionSensorDefinition(
    "phi4_automation", target=dg.AssetSelection.all(), default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=60,
    description="Evaluates the assets' automation conditions: data follows new shards; models retrain on changed data.")
