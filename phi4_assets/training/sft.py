"""Supervised fine-tuning with TRL's SFTTrainer on prompt/completion data (loss on the
completion only; TRL's assistant-only loss does not work with the stock SmolLM2 template)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .common import ProgressCallback, last_checkpoint, loss_curve_png, save_trained
from .settings import TrainSettings


def conversational(rows: list[dict]) -> list[dict]:
    """(prompt, completion) text rows -> TRL's conversational prompt/completion form."""
    return [{"prompt": [{"role": "user", "content": r["prompt"]}],
             "completion": [{"role": "assistant", "content": r["completion"]}]} for r in rows]


# The per-token columns of a dataset TRL has prepared for SFT (whichever of them it made).
PER_TOKEN_COLUMNS = ("input_ids", "labels", "completion_mask", "assistant_masks", "attention_mask", "position_ids")


def truncate_prepared(dataset, max_length: int):
    """TRL's own truncation (keep the start) of a prepared SFT dataset: every per-token column cut
    to ``max_length``, and examples left with no token to learn from dropped."""
    if all(len(ids) <= max_length for ids in dataset["input_ids"]):
        return dataset
    columns = [c for c in PER_TOKEN_COLUMNS if c in dataset.column_names]
    dataset = dataset.map(lambda example: {c: example[c][:max_length] for c in columns})
    if "labels" in dataset.column_names:
        return dataset.filter(lambda example: any(label != -100 for label in example["labels"]))
    if "completion_mask" in dataset.column_names:
        return dataset.filter(lambda example: any(example["completion_mask"]))
    return dataset


def train_sft(model_dir: str, rows: list[dict], out_dir: Path, work_dir: Path, settings: TrainSettings,
              logger: Any = None, callbacks: list | None = None) -> dict | None:
    """Fine-tune ``model_dir`` on ``rows`` and save the result (model + tokenizer) in ``out_dir``.

    Checkpoints go to ``work_dir``; a killed run started again resumes from the last one.
    Returns the training metrics and the loss history; in a launched job (``training.launch``)
    only the main process saves and returns them, the others return None.
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    peft_config = None
    extra = {}
    if settings.lora_r:
        from peft import LoraConfig

        peft_config = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
        extra["loss_type"] = "nll"  # chunked_nll does not work with PEFT
    kwargs = settings.trl_kwargs() | extra
    # Padding-free batches (TRL's ``padding_free``: a batch's sequences end to end in one row,
    # attention kept within each by transformers' packed-sequence mask): TRL 1.16 refuses them with
    # a ``max_length`` unless packing, so the limit is applied here to the prepared dataset instead.
    limit = kwargs["max_length"] if kwargs.get("padding_free") and not kwargs.get("packing") else None
    if limit is not None:
        kwargs["max_length"] = None
    config = SFTConfig(output_dir=str(work_dir), **kwargs)
    progress = ProgressCallback(logger)
    trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(conversational(rows)),
                         processing_class=tokenizer, peft_config=peft_config,
                         callbacks=[progress, *(callbacks or [])])
    if limit is not None:
        trainer.train_dataset = truncate_prepared(trainer.train_dataset, limit)
    resume = last_checkpoint(work_dir)
    if resume and logger:
        logger.info(f"resuming SFT from {resume}")
    tokens_per_epoch = sum(len(ids) for ids in trainer.train_dataset["input_ids"])
    started = time.monotonic()
    result = trainer.train(resume_from_checkpoint=resume)
    wall = time.monotonic() - started
    if not save_trained(trainer, out_dir, lora=bool(settings.lora_r)):
        return None
    steps = trainer.state.global_step
    counted = [h["num_tokens"] for h in progress.history if "num_tokens" in h]  # TRL's running count
    tokens = int(counted[-1]) if counted else int(tokens_per_epoch * settings.num_train_epochs)
    losses = [h["loss"] for h in progress.history if "loss" in h]
    metrics = {
        "steps": steps, "examples": len(rows), "tokens_per_epoch": tokens_per_epoch, "tokens": tokens,
        "wall_s": round(wall, 2), "train_runtime_s": round(result.metrics.get("train_runtime", wall), 2),
        "tokens_per_s": round(tokens / wall, 1) if tokens else None,
        "final_loss": losses[-1] if losses else None, "train_loss": result.training_loss,
        "bf16": settings.use_bf16(), "lora_r": settings.lora_r, "resumed_from": resume,
        "processes": trainer.accelerator.num_processes,
    }
    png = loss_curve_png(progress.history, Path(out_dir) / "loss_curve.png", "SFT loss")
    return {"metrics": metrics, "history": progress.history, "loss_curve": str(png) if png else None}
