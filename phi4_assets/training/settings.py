"""The training settings of one stage (TRL's names where TRL has one). No heavy imports: the
profile checks a stage's settings against these fields when it is loaded."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..core.hardware import preferred_dtype_name


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
    # DPO only: True saves the reference copy's memory (worth it for large models); on the small
    # profile keeping the copy measured 1.08x faster (BENCHMARKS.md), so it is the default.
    precompute_ref_log_probs: bool = False

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
        )

    def as_dict(self) -> dict:
        return asdict(self)
