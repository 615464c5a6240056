"""Group ``pts``: Pivotal Token Search on ``sft_model`` and DPO stage 1.

``pts_difficulty`` and ``pivotal_tokens`` are partitioned by domain (math, mcq, qa, code);
``pts_dpo_pairs`` reads every materialized domain.
"""

import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pandas as pd

from ..core.ids import row_id
from ..models.ref import ModelRef
from ..training.mix import stage_mix
from .resources import ProjectResource, PtsMemoResource
from ..pts import oracles
from ..pts.estimator import PrefixEstimator, estimate_many, estimate_roots
from ..pts.figure import draw_search
from ..pts.memo import prefix_hash
from ..pts.pairs import PairChoice, choose_pair, opposite_effect
from ..pts.problems import domain_problems
from ..pts.sampler import RolloutSampler, distinct_responses
from ..pts.search import Pivot, search_many, two_proportion_significant
from ..core.warehouse import frame_of, schema_metadata, table_schema
from .common import column_lineage, table_metadata
from .placement import POLICY_STEP_TAGS
from .training import dpo_model

GROUP = "pts"
DOMAINS = ["math", "mcq", "qa", "code"]
domains = dg.StaticPartitionsDefinition(DOMAINS)
# One run per domain in a backfill: each loads the policy and samples for minutes; the train
# pool keeps two of them from sharing the cores, and a failed domain is retried alone.
BY_DOMAIN = dict(group_name=GROUP, partitions_def=domains, pool="train", kinds={"pytorch", "duckdb"},
                 backfill_policy=dg.BackfillPolicy.multi_run(1), op_tags=POLICY_STEP_TAGS)


def _by_domain(schema) -> dict:
    return dict(BY_DOMAIN, metadata=schema_metadata(schema, partition_expr="domain"))


PTS_DIFFICULTY = table_schema(
    id="VARCHAR", domain="VARCHAR", problem_id="VARCHAR", question="VARCHAR", p_success="DOUBLE", rollouts="BIGINT",
    successes="BIGINT", in_window=("BOOLEAN", "p_success within pts_window: searched"), model_version="VARCHAR")
PIVOTAL_TOKENS = table_schema(
    id="VARCHAR", domain="VARCHAR", problem_id="VARCHAR", response_id="VARCHAR", response_text="VARCHAR",
    index=("BIGINT", "the pivot's position in the response"), token="BIGINT", token_text="VARCHAR",
    prefix_ids=("INTEGER[]", "the response tokens before the pivot (empty for a pivot at 0)"), prefix_text="VARCHAR",
    prefix_hash="VARCHAR", estimate_key=("VARCHAR", "the PTS memo key of the estimate at the prefix"),
    after_estimate_key=("VARCHAR", "the PTS memo key of the estimate at prefix + token"),
    prompt_ids="INTEGER[]", p_before="DOUBLE", p_after="DOUBLE", delta="DOUBLE", rollouts_per_estimate="BIGINT",
    accepted=("BOOLEAN", "kept by the significance guard"), model_version="VARCHAR")
PTS_DPO_PAIRS = table_schema(
    id="VARCHAR", prompt=("VARCHAR", "text prompt (mixed-in pairs); PTS pairs use prompt_token_ids"),
    prompt_token_ids="INTEGER[]", chosen="VARCHAR", rejected="VARCHAR", chosen_token_ids="INTEGER[]",
    rejected_token_ids="INTEGER[]", source=("VARCHAR", "pts:<domain> | hallucination | safety"),
    kind=("VARCHAR", "pts_up | pts_down (the pivot raises / lowers p), or the mixed-in pair's kind"),
    pivot_id="VARCHAR", problem_id="VARCHAR", p_before="DOUBLE", p_after="DOUBLE", partner_rate="DOUBLE",
    chosen_declines=("DOUBLE", "share of the chosen token's rollouts that declined to answer"),
    rejected_declines=("DOUBLE", "share of the rejected token's rollouts that declined to answer"))


def _oracle(domain: str, problem: dict, allow_fallback: bool):
    check = oracles.oracles_for(allow_fallback)[domain]
    return lambda response: check(response, problem)


@contextlib.contextmanager
def _sampler(project: ProjectResource, policy: ModelRef, domain: str) -> Iterator[RolloutSampler]:
    """The rollout sampler of the profile's policy engine (``models.engine``) over ``sft_model``."""
    settings = project.settings()
    with project.policy(policy.path, "sft_model") as engine:
        yield engine.rollout_sampler(temperature=settings.pts_temperature,
                                     max_new_tokens=settings.pts_max_new_tokens[domain],
                                     batch_size=min(16, settings.pts_rollouts))


def _inputs(context, domain, project, sft_model, math_problems, mcq_questions, trivia_seeds, code_problems):
    settings = project.settings()
    problems = domain_problems(domain, settings.pts_problems.get(domain, 0), math_problems, mcq_questions, trivia_seeds,
                         code_problems)
    policy = ModelRef.from_frame(sft_model)
    return settings, problems, policy


@dg.asset(**_by_domain(PTS_DIFFICULTY), code_version="4")
def pts_difficulty(context: dg.AssetExecutionContext, project: ProjectResource, pts_memo: PtsMemoResource,
                   sft_model: pd.DataFrame, math_problems: pd.DataFrame, mcq_questions: pd.DataFrame,
                   trivia_seeds: pd.DataFrame, code_problems: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """p(success) of each problem under ``sft_model`` from ``pts_rollouts`` rollouts (the root
    estimate of the search, memoized, so the search does not pay for it again). The problems are
    sampled together, several per batch (``estimator.estimate_roots``)."""
    domain = context.partition_key
    settings, problems, policy = _inputs(context, domain, project, sft_model, math_problems, mcq_questions,
                                         trivia_seeds, code_problems)
    with _sampler(project, policy, domain) as sampler:
        memo = pts_memo.memo()
        low, high = settings.pts_window
        rows = []
        estimators = [PrefixEstimator(sampler, _oracle(domain, problem, settings.sandbox_allow_fallback),
                                      sampler.prompt_ids(problem["question"]), settings.pts_rollouts, problem["id"],
                                      policy.data_version, memo, oracle_version=oracles.ORACLE_VERSION)
                      for problem in problems]
        for i, (problem, estimate) in enumerate(zip(problems, estimate_roots(estimators, logger=context.log))):
            rows.append({"id": row_id("difficulty", policy.data_version, problem["id"], settings.pts_rollouts),
                         "domain": domain, "problem_id": problem["id"], "question": problem["question"],
                         "p_success": estimate.p, "rollouts": estimate.n, "successes": int(sum(estimate.outcomes)),
                         "in_window": bool(low <= estimate.p <= high), "model_version": policy.data_version})
            context.log.info(f"{domain} {i + 1}/{len(problems)} {problem['id']}: p={estimate.p:.2f}")
    frame = frame_of(rows, PTS_DIFFICULTY)
    return dg.Output(frame, metadata=table_metadata(
        frame, ["problem_id", "p_success", "in_window"], problems=len(frame), in_window=int(frame["in_window"].sum()),
        mean_p_success=float(frame["p_success"].mean()) if len(frame) else 0.0,
        sampled_tokens=sampler.sampled_tokens, decoded_slots=sampler.slot_tokens))


@dg.asset(**_by_domain(PIVOTAL_TOKENS), code_version="5")
def pivotal_tokens(context: dg.AssetExecutionContext, project: ProjectResource, pts_memo: PtsMemoResource,
                   pts_difficulty: pd.DataFrame, sft_model: pd.DataFrame, math_problems: pd.DataFrame,
                   mcq_questions: pd.DataFrame, trivia_seeds: pd.DataFrame,
                   code_problems: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Pivots of ``pts_responses`` sampled responses per problem in the p(success) window (the
    distinct ones), with prefix, token, p_before, p_after, rollout counts, and whether the
    significance guard accepted them. The responses are sampled together, and the searches run in
    lockstep (``search.search_many``): each round's estimates, over every problem and response,
    are sampled together (``estimator.estimate_many``); a prefix two responses of a problem share
    is estimated once."""
    domain = context.partition_key
    settings, problems, policy = _inputs(context, domain, project, sft_model, math_problems, mcq_questions,
                                         trivia_seeds, code_problems)
    window = set(pts_difficulty[pts_difficulty["in_window"]]["problem_id"]) if len(pts_difficulty) else set()
    searched = [p for p in problems if p["id"] in window]
    with _sampler(project, policy, domain) as sampler:
        memo = pts_memo.memo()
        n = settings.pts_rollouts
        z = settings.pts_significance_z
        guard = (lambda v: two_proportion_significant(v.p_before, n, v.p_after, n, z)) if z > 0 else None
        estimators = [PrefixEstimator(sampler, _oracle(domain, problem, settings.sandbox_allow_fallback),
                                      sampler.prompt_ids(problem["question"]), n, problem["id"], policy.data_version,
                                      memo, oracle_version=oracles.ORACLE_VERSION) for problem in searched]
        k = settings.pts_responses
        sampled = sampler.responses([e.prompt_ids for e in estimators for _ in range(k)], seed=1)
        searches = distinct_responses(sampled, k)  # (problem index, response), in problem order
        rounds = []

        def estimate(asks: list[tuple[int, int]]) -> list[float]:
            rounds.append(len(asks))
            requests = [(estimators[searches[j][0]], searches[j][1].token_ids[:length]) for j, length in asks]
            return [e.p for e in estimate_many(requests, seed=1_000 + len(rounds), logger=context.log)]

        def progress(round_: int, asked: int, running: int) -> None:
            context.log.info(f"{domain} round {round_ + 1}: {asked} estimates for {running} searches "
                             f"({sampler.sampled_tokens} tokens sampled so far)")

        results = search_many([(r.token_ids, r.logprobs) for _, r in searches], estimate, settings.pts_gap, guard,
                              progress=progress)
        rows, panels = [], []
        for (i, response), result in zip(searches, results):
            problem, estimator = searched[i], estimators[i]
            prompt_ids = estimator.prompt_ids
            response_id = row_id("response", policy.data_version, problem["id"], response.token_ids)
            for pivot, accepted in [(v, True) for v in result.pivots] + [(v, False) for v in result.rejected]:
                prefix = response.token_ids[:pivot.index]
                rows.append({"id": row_id("pivot", response_id, pivot.index), "domain": domain,
                             "problem_id": problem["id"], "response_id": response_id,
                             "response_text": sampler.decode(response.token_ids), "index": pivot.index,
                             "token": pivot.token, "token_text": sampler.tokenizer.decode([pivot.token]),
                             "prefix_ids": _ints(prefix), "prefix_text": sampler.decode(prefix),
                             "prefix_hash": prefix_hash(tuple(prefix)), "estimate_key": estimator.key(prefix),
                             "after_estimate_key": estimator.key(response.token_ids[:pivot.index + 1]),
                             "prompt_ids": _ints(prompt_ids),
                             "p_before": pivot.p_before, "p_after": pivot.p_after, "delta": pivot.delta,
                             "rollouts_per_estimate": n, "accepted": accepted, "model_version": policy.data_version})
            context.log.info(f"{problem['id']}: {len(result.pivots)} pivots ({len(result.rejected)} rejected by the "
                             f"guard), {result.calls} estimates over {len(response.token_ids)} tokens")
            if len(panels) < 3:
                panels.append({"title": f"{problem['id']}: {sampler.decode(response.token_ids)[:110]!r}",
                               "tokens": [sampler.tokenizer.decode([t]) for t in response.token_ids],
                               "estimates": result.estimates, "pivots": {v.index: v.delta for v in result.pivots}})
        calls = sum(r.calls for r in results)
        rollouts = sum(e.rollouts for e in estimators)
        memo_hits = sum(e.memo_hits for e in estimators)
        rejected = sum(len(r.rejected) for r in results)
    frame = frame_of(rows, PIVOTAL_TOKENS)
    metadata = table_metadata(frame, ["problem_id", "index", "token_text", "p_before", "p_after", "accepted"],
                              problems_searched=len(window), responses_searched=len(searches),
                              pivots=int(frame["accepted"].sum()),
                              rejected_by_guard=rejected, estimator_calls=calls, rollouts_sampled=rollouts,
                              memo_hits=memo_hits, search_rounds=len(rounds), sampled_tokens=sampler.sampled_tokens,
                              decoded_slots=sampler.slot_tokens)
    if panels:
        out_dir = Path(project.reports_dir or Path.cwd() / "reports")
        out_dir.mkdir(parents=True, exist_ok=True)
        png = draw_search(panels, out_dir / f"pts_search_{domain}.png")
        metadata["search_view"] = dg.MetadataValue.md(
            f"![PTS search](data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()})")
        metadata["search_view_path"] = dg.MetadataValue.path(str(png))
    return dg.Output(frame, metadata=metadata)


@dg.asset(group_name=GROUP, pool="duckdb", kinds={"duckdb"}, code_version="3",
          ins={"pivotal_tokens": dg.AssetIn(partition_mapping=dg.AllPartitionMapping())},
          metadata=schema_metadata(PTS_DPO_PAIRS))
def pts_dpo_pairs(context: dg.AssetExecutionContext, project: ProjectResource, pts_memo: PtsMemoResource,
                  pivotal_tokens: pd.DataFrame, dpo1_mix_pairs: pd.DataFrame,
                  sft_model: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """prompt = chat-formatted question + prefix; chosen / rejected = single tokens from the rollouts
    already sampled at that prefix (see ``phi4_assets.pts.pairs``), leaving out a pair one of whose
    tokens mostly leads to a decline (``pairs.about_declining``); plus the "unknown + safety"
    pairs of ``dpo1_mix_pairs`` (from ``sft_model``) at ``pts_mix_share`` (at least ``mix_floor``; see
    ``phi4_assets.training.mix``)."""
    from transformers import AutoTokenizer

    settings = project.settings()
    policy = ModelRef.from_frame(sft_model)
    tokenizer = AutoTokenizer.from_pretrained(policy.path)
    memo = pts_memo.memo()
    rows, no_partner, repeated, declining, seen = [], 0, 0, 0, set()
    accepted = pivotal_tokens[pivotal_tokens["accepted"]] if len(pivotal_tokens) else pivotal_tokens
    # The rollouts at each pivot's prefix (the partner) and after its token, read at once.
    stored = memo.get_many([k for column in ("estimate_key", "after_estimate_key") for k in accepted[column]
                            if isinstance(k, str)])
    for v in accepted.itertuples():
        estimate = stored.get(v.estimate_key)
        choice = (choose_pair(_pivot(v), estimate, settings.pts_min_partner_rollouts,
                              after=stored.get(v.after_estimate_key)) if estimate is not None else PairChoice())
        if choice.left_out is not None:  # about whether to answer (pts.pairs)
            declining += 1
            out = choice.left_out
            context.log.info(f"{v.id}: left out, about declining ({tokenizer.decode([out.chosen])!r} over "
                             f"{tokenizer.decode([out.rejected])!r}; decline shares "
                             f"{out.chosen_declines} / {out.rejected_declines})")
            continue
        pair = choice.pair
        if pair is None:
            no_partner += 1
            continue
        # Two responses of a problem that share the prefix up to a pivot find it twice: one pair.
        same = (tuple(_ints(v.prompt_ids) + _ints(v.prefix_ids)), pair.chosen, pair.rejected)
        if same in seen:
            repeated += 1
            continue
        seen.add(same)
        rows.append({"id": row_id("ptspair", v.id, pair.chosen, pair.rejected), "prompt": None,
                     "prompt_token_ids": _ints(v.prompt_ids) + _ints(v.prefix_ids),
                     "chosen": tokenizer.decode([pair.chosen]), "rejected": tokenizer.decode([pair.rejected]),
                     "chosen_token_ids": [pair.chosen], "rejected_token_ids": [pair.rejected],
                     "source": f"pts:{v.domain}", "kind": "pts_up" if v.p_after > v.p_before else "pts_down",
                     "pivot_id": v.id, "problem_id": v.problem_id,
                     "p_before": v.p_before, "p_after": v.p_after, "partner_rate": pair.partner_rate,
                     "chosen_declines": pair.chosen_declines, "rejected_declines": pair.rejected_declines})
    n_pts = len(rows)
    mix = stage_mix(dpo1_mix_pairs, n_pts, settings.pts_mix_share, settings.mix_floor, settings.mix_balance)
    rows += [{"prompt_token_ids": None, "pivot_id": None, "p_before": None, "p_after": None, "partner_rate": None,
              "chosen_declines": None, "rejected_declines": None, **m} for m in mix]
    frame = frame_of(rows, PTS_DPO_PAIRS)
    return dg.Output(frame, metadata=table_metadata(
        frame, ["source", "kind", "chosen", "rejected", "p_before", "p_after"],
        pairs_by_source=frame["source"].value_counts().to_dict() or {"none": 0},
        pairs_by_kind=frame["kind"].value_counts().to_dict() or {"none": 0},
        pts_pairs=n_pts, mixed_in=len(mix), mix_balance=settings.mix_balance,
        mix_share=round(len(mix) / len(frame), 3) if len(frame) else 0.0,
        pivots_without_partner=no_partner, repeated_pivots=repeated, about_declining_left_out=declining,
        **column_lineage({"prompt_token_ids": [("pivotal_tokens", "prompt_ids"), ("pivotal_tokens", "prefix_ids")],
                          # The pivot token is one side; the other is a first token of the rollouts
                          # memoized under the pivot's estimate_key (the PTS memo, not a table).
                          "chosen_token_ids": [("pivotal_tokens", "token"), ("pivotal_tokens", "estimate_key")],
                          "rejected_token_ids": [("pivotal_tokens", "token"), ("pivotal_tokens", "estimate_key")],
                          "p_before": [("pivotal_tokens", "p_before")], "p_after": [("pivotal_tokens", "p_after")],
                          "pivot_id": [("pivotal_tokens", "id")],
                          "chosen": [("dpo1_mix_pairs", "chosen")],
                          "rejected": [("dpo1_mix_pairs", "rejected")]})))


@dg.asset_check(asset=pts_dpo_pairs, description="Every PTS pair's partner has the opposite effect of its pivot "
                                                 "(below p_before for a raising pivot, above it for a lowering one).")
def pts_partners_opposite(pts_dpo_pairs: pd.DataFrame) -> dg.AssetCheckResult:
    pts = pts_dpo_pairs[pts_dpo_pairs["source"].str.startswith("pts:")] if len(pts_dpo_pairs) else pts_dpo_pairs
    wrong = [r.id for r in pts.itertuples()
             if not opposite_effect(Pivot(0, 0, float(r.p_before), float(r.p_after)), float(r.partner_rate))]
    return dg.AssetCheckResult(passed=not wrong, metadata={"pts_pairs": len(pts), "same_direction": len(wrong),
                                                          "ids": ", ".join(wrong[:10])})


def _ints(values) -> list[int]:
    """Token ids as plain ints (DuckDB returns lists as numpy arrays, and cannot store numpy ints)."""
    return [int(v) for v in values]


def _pivot(v) -> Pivot:
    return Pivot(index=int(v.index), token=int(v.token), p_before=float(v.p_before), p_after=float(v.p_after))


dpo1_model = dpo_model("dpo1_model", group=GROUP, start="sft_model", pairs="pts_dpo_pairs", settings="dpo_train",
                       description="DPO stage 1: from ``sft_model`` (also the reference) on ``pts_dpo_pairs``.")
