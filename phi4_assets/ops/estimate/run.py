"""The estimate itself: plans -> lines, over a selection of the definitions' assets."""

from __future__ import annotations

from functools import cache

from .cost import cost_usd
from ...config.profiles import Profile, load_profile
from ...config.settings import Paths
from ...teacher import ChatRequest
from .core import Estimate, GraphAsset, Inputs, Line, Plan
from .plans import PLANNERS


def _line(inputs: Inputs, plan: Plan) -> Line:
    identity, _ = inputs.identity()
    todo: list[ChatRequest] | None = None  # the distinct requests still to call, where they are known
    if plan.requests is not None:
        requests, basis = len(plan.requests), "exact" if plan.requests or plan.generator == "teacher" else "none"
        distinct = {inputs.key(identity or "?", r): r for r in plan.requests}
        calls = len(distinct)
        hits = inputs.cached(list(distinct)) if identity and distinct else (set() if not distinct else None)
        cached = len(hits) if hits is not None else None
        todo = [r for key, r in distinct.items() if hits is None or key not in hits]
    elif plan.bound is not None:
        requests, basis, calls, cached = plan.bound, "upper bound", plan.bound, None
    else:
        requests, basis, calls, cached = None, "unknown", None, None
    if plan.generator == "rules":
        basis = "none"
    to_call = calls - cached if calls is not None and cached is not None else None
    counted = to_call if to_call is not None else calls
    line = Line(plan.asset, plan.partition, plan.task, plan.generator, requests, basis, calls, cached, to_call,
                None, None, "unknown", note=plan.basis)
    if counted == 0:
        line.tokens = line.prompt_tokens = line.completion_tokens = 0
        line.tokens_basis = line.prompt_basis = "none"
        line.cost = 0.0
        return line
    measured, measured_note = inputs.tokens_per_call(plan.task, identity)
    if counted is None or (measured is None and plan.max_tokens is None):
        return line
    if measured is not None:
        completion, line.tokens_basis, notes = measured[1], "measured", [measured_note]
    else:
        completion, line.tokens_basis = float(plan.max_tokens), "upper bound"
        notes = [f"upper bound: max_tokens {plan.max_tokens} completion tokens a call"]
    # Prompt tokens: the teacher's own tokenizer, else measured means, else the base model's tokenizer.
    counter, prompts = inputs.prompts(), None
    if todo is not None and (counter.exact or measured is None):
        counts = [counter.count(r.messages) for r in todo]
        if None not in counts:
            prompts, line.prompt_basis = counts, "counted" if counter.exact else "approximation"
            notes.append("prompt tokens counted (the teacher's tokenizer)" if counter.exact else
                         "prompt tokens approximate (the base model's tokenizer)")
    if prompts is None and measured is not None:
        prompts, line.prompt_basis = [measured[0]] * counted, "measured"
    if prompts is None:
        notes.append("prompt tokens unknown (the request texts are not known yet)" if todo is None else
                     "prompt tokens not counted (no tokenizer)")
    line.completion_tokens = round(completion * counted)
    line.prompt_tokens = round(sum(prompts)) if prompts is not None else None
    line.tokens = line.completion_tokens + (line.prompt_tokens or 0)
    line.tokens_per_call = line.tokens / counted
    if to_call is None:
        notes.append("every call counted (cache hits unknown)")
    line.tokens_note = "; ".join(notes)
    # The cost, per model: judge candidates may ask other models at the endpoint.
    models = [inputs.model_of(r) for r in todo] if todo is not None else [inputs.teacher_name] * counted
    line.cost, line.unpriced = cost_usd(inputs.profile.teacher_prices,
                                        zip(models, prompts or [0] * counted, [completion] * counted))
    return line


@cache
def graph() -> dict[str, GraphAsset]:
    """Every asset of the definitions (``phi4_assets.definitions``; loading them takes seconds):
    its group, whether it takes the teacher resource, whether it is partitioned by seed shards.
    The teacher-calling assets are read from here, never listed again."""
    from ...definitions import defs

    out = {}
    for assets in defs.assets or []:
        partitions = getattr(assets, "partitions_def", None)
        sharded = getattr(partitions, "name", None) == "seed_shards"
        for key in assets.keys:
            name = key.to_user_string()
            out[name] = GraphAsset(name, assets.group_names_by_key.get(key, "default"),
                                   "teacher" in assets.required_resource_keys, sharded)
    return out


def teacher_assets() -> list[str]:
    return sorted(name for name, a in graph().items() if a.teacher)


def expand_selection(select: list[str]) -> list[str]:
    """Asset names from names and ``group:NAME`` (groups from the Dagster definitions)."""
    groups = {name: a.group for name, a in graph().items()}
    names: list[str] = []
    for item in select:
        if item.startswith("group:"):
            members = sorted(name for name, group in groups.items() if group == item.split(":", 1)[1])
            if not members:
                raise ValueError(f"no asset in {item!r}; groups: {', '.join(sorted(set(groups.values())))}")
            names += members
        elif item in groups:
            names.append(item)
        else:
            raise ValueError(f"unknown asset {item!r}; the teacher-calling assets: {', '.join(teacher_assets())}")
    return list(dict.fromkeys(names))


def estimate(select: list[str], partitions: list[str] | None = None, profile: Profile | None = None,
             paths: Paths | None = None) -> Estimate:
    """The teacher calls and tokens of materializing ``select`` (asset names or ``group:NAME``),
    in the given seed shards (default: all) for the sharded assets."""
    profile = profile or load_profile()
    paths = paths or Paths.from_env()
    names = expand_selection(select)
    inputs = Inputs(profile, paths)
    identity, identity_note = inputs.identity()
    result = Estimate(profile=profile.name, teacher=identity, teacher_note=identity_note,
                      priced_model=inputs.teacher_name, price=profile.teacher_prices.get(inputs.teacher_name))
    assets = graph()
    shards = inputs.shard_questions() if any(assets[n].teacher and assets[n].sharded for n in names) else {}
    if partitions and shards:
        unknown = [k for k in partitions if k not in shards]
        if unknown:
            raise ValueError(f"unknown seed shard(s) {', '.join(unknown)}; shards: {', '.join(shards)}")
    for name in names:
        if not assets[name].teacher:
            result.skipped[name] = "makes no teacher calls"
            continue
        if name not in PLANNERS:
            raise ValueError(f"{name} takes the teacher resource but the estimate has no planner for it")
        if assets[name].sharded:
            plans = [plan for key, questions in shards.items() if not partitions or key in partitions
                     for plan in PLANNERS[name](inputs, key, questions)]
        else:
            plans = PLANNERS[name](inputs, None)
        result.lines += [_line(inputs, plan) for plan in plans]
    result.prompt_note = inputs.prompts().note
    return result


# -- text ------------------------------------------------------------------------------------------
