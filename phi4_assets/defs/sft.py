"""Group ``sft``: the SFT mixture and the SFT model."""

import dagster as dg
import pandas as pd
from pydantic import Field

from ..core.warehouse import frame_of, schema_metadata, table_schema
from ..core.ids import row_id
from ..models.ref import ModelRef
from ..core.refusal import declines, is_refusal
from .resources import ModelStoreResource, ProjectResource
from ..sft.data import (cap_declines, chat_prompt_selection, mix_by_shares, response_request, sft_target,
                        template_safety_refusal)
from ..teacher.resource import TeacherResource
from .common import TEACHER_RETRY, ask_teacher, table_metadata
from .training import TRAIN, launch_of, retrain_when_data_changes, settings_from, train_model_asset, trainer

GROUP = "sft"


def _teacher_rows(context, teacher, base_model, prompts: pd.DataFrame, source: str, kind: str,
                  max_tokens: int) -> tuple[list[dict], dict]:
    """Teacher responses to prompts as SFT rows (``sft_target``: a reply cut off at its token
    limit ends at its last full sentence; failed, empty and looping replies are dropped and counted)."""
    requests = [response_request(p, kind, max_tokens) for p in prompts["prompt"]]
    batch = ask_teacher(context, teacher, requests, base_model)
    rows, dropped = [], {}
    for (_, p), reply in zip(prompts.iterrows(), batch.replies):
        truncated = reply.finish_reason == "length"
        completion, reason = sft_target(reply.text, truncated) if reply.ok else (None, "teacher_error")
        if completion and kind == "benign_answer" and (is_refusal(completion) or declines(completion)):
            reason = "refused_benign_prompt"
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        rows.append({"prompt": p["prompt"], "completion": completion, "source": source, "kind": kind,
                     "generator": batch.model, "source_id": p["id"], "teacher_call_id": reply.call_id,
                     "truncated": truncated})
    return rows, {"dropped": dropped, **batch.stats.as_metadata(f"teacher_{kind}_")}


class SftDataConfig(dg.Config):
    chat_prompts: int | None = Field(default=None, description="Chat prompts answered by the teacher (profile default).")


SFT_DATASET = table_schema(
    id="VARCHAR", prompt="VARCHAR", completion="VARCHAR", source=("VARCHAR", "chat | hallucination | safety"),
    kind="VARCHAR", generator="VARCHAR", source_id="VARCHAR", teacher_call_id="VARCHAR",
    truncated=("BOOLEAN", "the teacher's response hit its token limit (the completion ends at its last full sentence)"))


@dg.asset(group_name=GROUP, pool="duckdb", kinds={"duckdb"}, code_version="1", retry_policy=TEACHER_RETRY,
          automation_condition=dg.AutomationCondition.eager(), metadata=schema_metadata(SFT_DATASET))
def sft_dataset(context: dg.AssetExecutionContext, config: SftDataConfig, project: ProjectResource,
                teacher: TeacherResource, chat_prompts: pd.DataFrame, safety_prompts: pd.DataFrame,
                hallucination_sft_data: pd.DataFrame, base_model: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """The SFT mixture in prompt/completion form: teacher responses to ``chat_prompts``, the
    hallucination SFT data, and safety data (refusals for harmful prompts, real answers for the
    benign look-alikes), in the profile's ``sft_mix`` shares."""
    settings = project.settings()
    model = ModelRef.from_frame(base_model)
    n_chat = config.chat_prompts or settings.sft_chat_prompts
    chats = chat_prompt_selection(chat_prompts, n_chat)
    chat_rows, chat_meta = _teacher_rows(context, teacher, model, chats, "chat", "chat_response",
                                         settings.sft_response_tokens)
    benign = safety_prompts[safety_prompts["kind"] == "benign"].sort_values("id")
    benign_rows, benign_meta = _teacher_rows(context, teacher, model, benign, "safety", "benign_answer",
                                             settings.sft_response_tokens)
    harmful = safety_prompts[safety_prompts["kind"] == "harmful"].sort_values("id")
    refusal_rows, refusal_meta = [], {}
    if settings.generators.get("safety_refusal", "rules") == "teacher":
        refusal_rows, refusal_meta = _teacher_rows(context, teacher, model, harmful, "safety", "harmful_refusal",
                                                   settings.sft_response_tokens)
        refusal_rows = [r for r in refusal_rows if is_refusal(r["completion"])]
    done = {r["source_id"] for r in refusal_rows}
    for _, p in harmful.iterrows():
        if p["id"] not in done:
            refusal_rows.append({"prompt": p["prompt"], "completion": template_safety_refusal(p["id"], p["category"]),
                                 "source": "safety", "kind": "harmful_refusal", "generator": "rules",
                                 "source_id": p["id"], "teacher_call_id": None, "truncated": False})
    hallucination_rows = [{"prompt": r.prompt, "completion": r.completion, "source": "hallucination", "kind": r.kind,
                           "generator": r.generator, "source_id": r.id, "teacher_call_id": None, "truncated": False}
                          for r in hallucination_sft_data.itertuples()]
    available = len(hallucination_rows)
    hallucination_rows = cap_declines(hallucination_rows, settings.sft_max_decline_share)
    declines_dropped = available - len(hallucination_rows)
    pools = {"chat": chat_rows, "hallucination": hallucination_rows, "safety": benign_rows + refusal_rows}
    for pool in pools.values():
        for row in pool:
            row["id"] = row_id("sft", row["prompt"], row["completion"])
    mixed = mix_by_shares(pools, settings.sft_mix)
    frame = frame_of((row for rows in mixed.values() for row in rows), SFT_DATASET)
    if frame.empty:
        raise ValueError("sft_dataset: no rows (every source is empty)")
    meta = {**chat_meta, **benign_meta, **refusal_meta}
    dropped = {f"{k}:{reason}": n for k, m in (("chat", chat_meta), ("benign", benign_meta), ("refusal", refusal_meta))
               for reason, n in m.get("dropped", {}).items()}
    meta.pop("dropped", None)
    return dg.Output(frame, metadata=table_metadata(
        frame, ["source", "kind", "prompt", "completion"], rows_by_source=frame["source"].value_counts().to_dict(),
        rows_by_kind=frame["kind"].value_counts().to_dict(),
        available={k: len(v) for k, v in pools.items()}, shares=settings.sft_mix,
        truncated_responses=int(frame["truncated"].sum()), dropped=dropped or {"none": 0},
        declines_capped=declines_dropped, max_decline_share=settings.sft_max_decline_share,
        **{k: v for k, v in meta.items() if not isinstance(v, dict)}))


class TrainConfig(dg.Config):
    overrides: dict = Field(default_factory=dict, description="TrainSettings fields to override for this run.")


@dg.asset(group_name=GROUP, **TRAIN, code_version="1",
          automation_condition=retrain_when_data_changes("sft_dataset"))
def sft_model(context: dg.AssetExecutionContext, config: TrainConfig, project: ProjectResource,
              model_store: ModelStoreResource, base_model: pd.DataFrame,
              sft_dataset: pd.DataFrame) -> dg.Output[pd.DataFrame]:
    """SFTTrainer from ``base_model`` on ``sft_dataset`` (completion-only loss). bf16 autocast
    where the CPU has native bf16, fp32 otherwise; full fine-tuning unless ``lora_r`` is set."""
    profile = project.settings()
    settings = settings_from(profile.sft_train, config.overrides, stage="sft_train")
    parent = ModelRef.from_frame(base_model)
    return train_model_asset(context, model_store, "sft_model", parent, sft_dataset[["id", "prompt", "completion"]],
                             settings, trainer(context, profile, "sft", parent.path,
                                               sft_dataset[["prompt", "completion"]], settings), launch_of(profile))
