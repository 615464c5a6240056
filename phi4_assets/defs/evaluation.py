"""Group ``evaluation``: every stage on every benchmark, the Table 9 ablation and Figure 6.

``stage_evaluations`` is partitioned by stage (base, sft, dpo1, dpo2_only, final = dpo2_model)
and stores per-item results; the aggregates (with 95% confidence intervals) are computed from
them by ``phi4_assets.evaluation.metrics.aggregate``, so the per-item rows are the one source
of truth for ``ablation_table`` and ``simpleqa_evolution``.
"""

import base64
from pathlib import Path

import dagster as dg
import pandas as pd

from ..evaluation import report
from ..evaluation.graders import LLMGrader
from ..evaluation.rule_grader import RuleGrader
from ..evaluation.metrics import aggregate
from ..evaluation.runner import evaluate_model, select_items
from ..models.ref import ModelRef
from ..core.reporting import markdown_table
from .placement import POLICY_STEP_TAGS
from .resources import ProjectResource
from ..teacher.resource import TeacherResource
from ..evaluation.runner import ITEM_TYPES
from ..core.warehouse import schema_metadata, table_schema

GROUP = "evaluation"
STAGES = list(report.STAGES)
stages = dg.StaticPartitionsDefinition(STAGES)
# The model asset evaluated at each stage.
STAGE_MODELS = {"base": "base_model", "sft": "sft_model", "dpo1": "dpo1_model", "dpo2_only": "dpo2_only_model",
                "final": "dpo2_model"}
ALL_STAGES = dg.AssetIn(partition_mapping=dg.AllPartitionMapping())

STAGE_EVALUATIONS = table_schema(stage="VARCHAR", model_version="VARCHAR", **ITEM_TYPES)
# report.ablation_table's columns: per stage its value, CI and n, then the report's values.
_LABELS = [report.STAGE_LABELS[s] for s in report.STAGES]
ABLATION_TABLE = table_schema(
    benchmark="VARCHAR", metric="VARCHAR", row="VARCHAR",
    **{f"{label}{part}": type_ for label in _LABELS
       for part, type_ in (("", "DOUBLE"), (" ci_low", "DOUBLE"), (" ci_high", "DOUBLE"), (" n", "BIGINT"))},
    **{f"report: {label}": "DOUBLE" for label in _LABELS}, **{"report row": "VARCHAR"})
SIMPLEQA_EVOLUTION = table_schema(stage="VARCHAR", source=("VARCHAR", "ours | report"), outcome="VARCHAR",
                                  percent="DOUBLE", ci_low="DOUBLE", ci_high="DOUBLE", n="BIGINT")


# One run per stage in a backfill: each stage loads a different model; a stage whose model is
# not trained yet fails alone while the others complete.
@dg.asset(group_name=GROUP, partitions_def=stages, pool="train", kinds={"pytorch", "duckdb"}, code_version="4",
          backfill_policy=dg.BackfillPolicy.multi_run(1), op_tags=POLICY_STEP_TAGS,
          metadata=schema_metadata(STAGE_EVALUATIONS, partition_expr="stage"))
def stage_evaluations(context: dg.AssetExecutionContext, project: ProjectResource, teacher: TeacherResource,
                      eval_sets: pd.DataFrame, base_model: pd.DataFrame, sft_model: pd.DataFrame,
                      dpo1_model: pd.DataFrame, dpo2_only_model: pd.DataFrame,
                      dpo2_model: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """One stage's model on every benchmark of ``eval_sets`` (greedy): per item the question,
    response, grade and grader. SimpleQA is graded by the LLM grader (the teacher) or by the
    deterministic grader, as ``generators.eval_grade`` says; the others by their oracles."""
    stage = context.partition_key
    settings = project.settings()
    frames = {"base_model": base_model, "sft_model": sft_model, "dpo1_model": dpo1_model,
              "dpo2_only_model": dpo2_only_model, "dpo2_model": dpo2_model}
    if frames[STAGE_MODELS[stage]].empty:
        raise ValueError(f"stage {stage}: {STAGE_MODELS[stage]} is not materialized yet")
    model = ModelRef.from_frame(frames[STAGE_MODELS[stage]])
    base = ModelRef.from_frame(base_model)
    grader = (LLMGrader.from_teacher(teacher, serve_model=base.path, logger=context.log)
              if settings.generators.get("eval_grade", "rules") == "teacher" else RuleGrader())
    items = select_items(eval_sets, settings.eval_limits)
    context.log.info(f"stage {stage}: evaluating {model.path} on {len(items)} items, grader {grader.name}")
    with project.policy(model.path, model.name) as policy:
        per_item, aggregates = evaluate_model(model.path, items, grader=grader, batch_size=settings.eval_batch_size,
                                              max_new_tokens=settings.eval_max_new_tokens or None, logger=context.log,
                                              sandbox_allow_fallback=settings.sandbox_allow_fallback, policy=policy)
    per_item.insert(0, "stage", stage)
    per_item.insert(1, "model_version", model.data_version)
    per_item["id"] = per_item["id"].astype(str)
    return dg.Output(per_item, metadata={
        "dagster/row_count": len(per_item), "model": model.path, "grader": grader.name,
        "aggregates": dg.MetadataValue.md(markdown_table(aggregates.round(4), limit=40)),
        **{f"{r.benchmark}/{r.metric}": float(r.value) for r in aggregates.itertuples() if pd.notna(r.value)},
    })


def _aggregates_by_stage(stage_evaluations: pd.DataFrame) -> dict[str, pd.DataFrame]:
    if stage_evaluations.empty:
        return {}
    return {stage: aggregate(frame) for stage, frame in stage_evaluations.groupby("stage") if stage in STAGES}


@dg.asset(group_name=GROUP, pool="duckdb", kinds={"duckdb"}, code_version="1",
          ins={"stage_evaluations": ALL_STAGES}, metadata=schema_metadata(ABLATION_TABLE))
def ablation_table(context: dg.AssetExecutionContext, stage_evaluations: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """The report's Table 9 layout: rows are benchmark metrics, columns base | SFT | DPO stage 1 |
    DPO stage 2 only | both (final), each with its 95% CI, and the report's own values beside."""
    by_stage = _aggregates_by_stage(stage_evaluations)
    table = report.ablation_table(by_stage)
    return dg.Output(table, metadata={"dagster/row_count": len(table), "stages": ", ".join(sorted(by_stage)),
                                      "table": dg.MetadataValue.md(report.ablation_markdown(table))})


@dg.asset(group_name=GROUP, pool="duckdb", kinds={"duckdb"}, code_version="1",
          ins={"stage_evaluations": ALL_STAGES}, metadata=schema_metadata(SIMPLEQA_EVOLUTION))
def simpleqa_evolution(context: dg.AssetExecutionContext, project: ProjectResource,
                       stage_evaluations: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """Figure 6: SimpleQA correct / not attempted / incorrect at base, SFT, DPO1 and final, as a
    table and a stacked-bar PNG with the report's values drawn beside ours."""
    by_stage = _aggregates_by_stage(stage_evaluations)
    table = report.simpleqa_evolution(by_stage)
    out_dir = Path(project.reports_dir or Path.cwd() / "reports")
    out_dir.mkdir(parents=True, exist_ok=True)
    png = report.simpleqa_figure(by_stage, out_dir / "simpleqa_evolution.png")
    encoded = base64.b64encode(png.read_bytes()).decode()
    return dg.Output(table, metadata={
        "dagster/row_count": len(table), "table": dg.MetadataValue.md(markdown_table(table.round(2), limit=20)),
        "figure": dg.MetadataValue.md(f"![SimpleQA through post-training](data:image/png;base64,{encoded})"),
        "figure_path": dg.MetadataValue.path(str(png))})
