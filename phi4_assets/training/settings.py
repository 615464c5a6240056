"""The training settings of one stage (TRL's names where TRL has one). No heavy imports: the
profile checks a stage's settings against these fields when it is loaded.

A stage's table in the profile (``sft_train``, ``dpo_train``, ``dpo2_train``) takes the
``TrainSettings`` fields below and, beside them, any field of the stage's TRL config class
(``SFTConfig`` for ``sft_train``, ``DPOConfig`` for the DPO stages): ``optim``, ``lr_scheduler_type``,
``weight_decay``, ``gradient_checkpointing``, ``deepspeed``, ``fsdp``, ... Those go to TRL as given
(``TrainSettings.trl``), over the defaults ``trl_kwargs`` sets, and are checked against the config
class's own fields when the profile loads (TRL is imported for that only where a table has one)."""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

from ..core.hardware import preferred_dtype_name


# Where a model asset trains (the profile's ``train_launcher``; ``training.launch``).
LAUNCHERS = ("inprocess", "accelerate")


@dataclass(frozen=True)
class TrainSettings:
    """Knobs shared by SFT and DPO (TRL names where TRL has one)."""

    learning_rate: float = 2e-5
    num_train_epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    per_device_train_batch_size: int = 4
    gradient_accumulation_steps: int = 1
    max_length: int = 384
    # A fraction of the run below 1, else a step count (transformers 5). 0 like TRL: a warmup
    # step runs at learning rate 0, which on a 1-6 step stage means no update at all.
    warmup_steps: float = 0.0
    logging_steps: int = 1
    save_steps: int = 25  # checkpoints for resuming a killed run
    seed: int = 42
    precision: str = "auto"  # auto | bf16 | fp32
    lora_r: int = 0  # 0: full fine-tuning
    lora_alpha: int = 32
    beta: float = 0.1  # DPO only
    # DPO only: the reference's log-probabilities computed once before training, not at every
    # step of every epoch; it also saves the reference copy's memory. Over one epoch keeping the
    # copy measured 1.08x faster (BENCHMARKS.md); the small and full profiles train 2-3 epochs and
    # precompute.
    precompute_ref_log_probs: bool = False
    # DPO only: batches of pairs of similar length, in a random order each epoch
    # (``batching.LengthBucketSampler``): less padding where TRL cannot train padding-free.
    length_buckets: bool = False
    # Any other field of the stage's TRL config class, passed through as given (see the module).
    trl: dict[str, Any] = field(default_factory=dict)

    def use_bf16(self) -> bool:
        if self.precision == "auto":
            return preferred_dtype_name() == "bfloat16"
        return self.precision == "bf16"

    def trl_kwargs(self) -> dict[str, Any]:
        """Arguments for SFTConfig / DPOConfig, with the CPU traps of TRL's defaults undone."""
        import torch

        return dict(
            learning_rate=self.learning_rate, num_train_epochs=self.num_train_epochs, max_steps=self.max_steps,
            per_device_train_batch_size=self.per_device_train_batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps, max_length=self.max_length,
            warmup_steps=self.warmup_steps, logging_steps=self.logging_steps, save_steps=self.save_steps,
            save_total_limit=2, seed=self.seed, bf16=self.use_bf16(), fp16=False,
            use_cpu=not torch.cuda.is_available(), gradient_checkpointing=False, report_to="none",
            dataloader_num_workers=0, disable_tqdm=True, save_only_model=False,
            ddp_find_unused_parameters=False,  # read only under DDP (a launched job): every trainable weight gets a gradient
        ) | dict(self.trl)

    def as_dict(self) -> dict:
        """The settings as the model's version hashes them (``trl`` only where set, so the
        versions of models trained before TRL fields could be given stay the same)."""
        out = asdict(self)
        for name in ("trl", "length_buckets"):  # fields added later: hashed only where set
            if not out[name]:
                del out[name]
        return out


# The TRL config class of each stage's table in the profile.
TRL_CONFIGS = {"sft_train": "SFTConfig", "dpo_train": "DPOConfig", "dpo2_train": "DPOConfig"}
OURS = frozenset(f.name for f in dataclasses.fields(TrainSettings)) - {"trl"}


@cache
def trl_fields(config: str) -> frozenset[str]:
    """The fields of TRL's ``config`` class (``SFTConfig`` / ``DPOConfig``); imports TRL."""
    import trl

    return frozenset(f.name for f in dataclasses.fields(getattr(trl, config)) if f.init)


def trl_hint(stage: str, key: str) -> Any:
    """The type TRL declares for ``key`` in the stage's config class (None where it cannot be read)."""
    import typing

    import trl

    config = getattr(trl, TRL_CONFIGS.get(stage, "DPOConfig"))
    try:
        return typing.get_type_hints(config).get(key)
    except Exception:  # an annotation that does not resolve here
        return next((f.type for f in dataclasses.fields(config) if f.name == key and not isinstance(f.type, str)), None)


def unknown_setting(stage: str, key: str) -> str | None:
    """Why ``key`` cannot be in the profile's ``stage`` table (None: it can): neither a
    ``TrainSettings`` field nor a field of the stage's TRL config class."""
    if key in OURS:
        return None
    config = TRL_CONFIGS.get(stage, "DPOConfig")
    fields = trl_fields(config)
    if key in fields:
        return None
    close = difflib.get_close_matches(key, sorted(OURS | fields), n=3)
    return (f"{stage}.{key}: neither a training setting of the project nor a field of TRL's {config}"
            + (f"; did you mean {' or '.join(close)}?" if close else ""))


def split_settings(stage: str, table: dict[str, Any]) -> dict[str, Any]:
    """``TrainSettings`` keyword arguments from a profile table: the project's own fields as they
    are, every TRL config field under ``trl``. Raises ValueError naming each unknown key."""
    problems = [p for p in (unknown_setting(stage, key) for key in table) if p]
    if problems:
        raise ValueError("; ".join(problems))
    ours = {k: v for k, v in table.items() if k in OURS}
    passed = {k: v for k, v in table.items() if k not in OURS}
    return {**ours, "trl": passed} if passed else ours
