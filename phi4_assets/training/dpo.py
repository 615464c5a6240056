"""The DPO stage every DPO asset uses: TRL's DPOTrainer from a model directory that is also
the reference, on a pairs table (prompt, chosen, rejected, source).

Pairs are tokenized here, not by TRL: TRL appends EOS to non-chat completions and the chat
template closes the assistant turn, so a single-token pair would train "token + end". Pairs
that carry exact token ids (``chosen_token_ids`` / ``rejected_token_ids``: PTS tokens,
truncated hallucination answers) are trained on exactly those ids; full responses get the
end-of-turn token, as a finished answer should.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .common import ProgressCallback, last_checkpoint, loss_curve_png, save_trained
from .settings import TrainSettings


def _ids(value) -> list[int] | None:
    if value is None:
        return None
    try:
        ids = [int(v) for v in value]
    except TypeError:
        return None
    return ids or None


def tokenize_pairs(pairs: list[dict], tokenizer) -> list[dict]:
    """Rows with ``prompt_ids``, ``chosen_ids``, ``rejected_ids`` for TRL's preference collator.

    ``prompt`` is the user message (chat-formatted here, generation prompt included), or
    ``prompt_token_ids`` gives the full prompt (e.g. question + PTS prefix) exactly.
    """
    eos = tokenizer.eos_token_id
    out = []
    for pair in pairs:
        prompt_ids = _ids(pair.get("prompt_token_ids"))
        if prompt_ids is None:
            prompt_ids = tokenizer.apply_chat_template([{"role": "user", "content": pair["prompt"]}],
                                                       add_generation_prompt=True, tokenize=True, return_dict=False)
            prompt_ids = list(prompt_ids["input_ids"] if isinstance(prompt_ids, dict) else prompt_ids)
        sides = {}
        for side in ("chosen", "rejected"):
            exact = _ids(pair.get(f"{side}_token_ids"))
            sides[side] = exact if exact is not None else (
                tokenizer(pair[side], add_special_tokens=False)["input_ids"] + [eos])
        out.append({"prompt_ids": prompt_ids, "chosen_ids": sides["chosen"], "rejected_ids": sides["rejected"]})
    return out


def _trainer_class():
    from trl import DPOTrainer

    class PreTokenizedDPOTrainer(DPOTrainer):
        """DPOTrainer that takes already tokenized pairs as they are, and draws its batches from
        ``length_buckets`` (a ``batching.LengthBucketSampler``) where one is set."""

        length_buckets = None

        def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
            if "prompt_ids" in dataset.column_names:
                return dataset
            return super()._prepare_dataset(dataset, processing_class, args, dataset_name)

        def _get_train_sampler(self, train_dataset=None):
            if self.length_buckets is not None:
                return self.length_buckets
            return super()._get_train_sampler(train_dataset)

    return PreTokenizedDPOTrainer


def build_dpo_trainer(model_dir: str, pairs: list[dict], work_dir: Path, settings: TrainSettings,
                      callbacks: list | None = None):
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    peft_config = None
    if settings.lora_r:
        from peft import LoraConfig

        peft_config = LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, target_modules="all-linear",
                                 task_type="CAUSAL_LM")
    config = DPOConfig(output_dir=str(work_dir), beta=settings.beta,
                       precompute_ref_log_probs=settings.precompute_ref_log_probs, **settings.trl_kwargs())
    rows = tokenize_pairs(pairs, tokenizer)
    trainer = _trainer_class()(model=model, args=config, train_dataset=Dataset.from_list(rows),
                               processing_class=tokenizer, peft_config=peft_config, callbacks=callbacks or [])
    if settings.length_buckets:
        from .batching import LengthBucketSampler, pair_length

        batch = settings.per_device_train_batch_size * settings.gradient_accumulation_steps
        trainer.length_buckets = LengthBucketSampler([pair_length(r) for r in rows], batch, seed=settings.seed)
    return trainer


def train_dpo(model_dir: str, pairs: list[dict], out_dir: Path, work_dir: Path, settings: TrainSettings,
              logger: Any = None) -> dict | None:
    """One DPO stage from ``model_dir`` (policy and reference) on ``pairs``; saves to ``out_dir``.
    In a launched job (``training.launch``) only the main process saves and returns the result."""
    progress = ProgressCallback(logger)
    trainer = build_dpo_trainer(model_dir, pairs, work_dir, settings, callbacks=[progress])
    resume = last_checkpoint(work_dir)
    if resume and logger:
        logger.info(f"resuming DPO from {resume}")
    dataset = trainer.train_dataset
    tokens_per_epoch = sum(len(p) * 2 + len(c) + len(r) for p, c, r in
                           zip(dataset["prompt_ids"], dataset["chosen_ids"], dataset["rejected_ids"]))
    started = time.monotonic()
    result = trainer.train(resume_from_checkpoint=resume)
    wall = time.monotonic() - started
    if not save_trained(trainer, out_dir, lora=bool(settings.lora_r)):
        return None
    counted = [h["num_tokens"] for h in progress.history if "num_tokens" in h]  # TRL's running count
    tokens = int(counted[-1]) if counted else int(tokens_per_epoch * settings.num_train_epochs)
    last = {}
    for h in progress.history:
        last.update({k: v for k, v in h.items() if k.startswith(("rewards/", "loss"))})
    metrics = {
        "steps": trainer.state.global_step, "pairs": len(pairs), "tokens_per_epoch": tokens_per_epoch,
        "tokens": tokens, "wall_s": round(wall, 2), "tokens_per_s": round(tokens / wall, 1) if tokens else None,
        "final_loss": last.get("loss"), "train_loss": result.training_loss,
        "reward_margin": last.get("rewards/margins"), "reward_accuracy": last.get("rewards/accuracies"),
        "bf16": settings.use_bf16(), "precomputed_ref": settings.precompute_ref_log_probs,
        "lora_r": settings.lora_r, "resumed_from": resume,
        "processes": trainer.accelerator.num_processes,
    }
    png = loss_curve_png(progress.history, Path(out_dir) / "loss_curve.png", "DPO loss and reward margin",
                         keys=("loss", "rewards/margins"))
    return {"metrics": metrics, "history": progress.history, "loss_curve": str(png) if png else None}
