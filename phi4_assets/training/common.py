"""What SFT and DPO share: run settings, precision, resumable work dirs, progress, loss curves."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ..hardware import preferred_dtype_name

log = logging.getLogger(__name__)


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


def last_checkpoint(work_dir: Path) -> str | None:
    checkpoints = sorted(Path(work_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(checkpoints[-1]) if checkpoints else None


def clear_work_dir(work_dir: Path) -> None:
    shutil.rmtree(work_dir, ignore_errors=True)


class ProgressCallback(TrainerCallback):
    """Logs steps, loss and tokens/s to a Dagster (or stdlib) logger; keeps the loss history."""

    def __init__(self, logger: Any = None, every_s: float = 10.0):
        self.logger = logger or log
        self.every_s = every_s
        self.history: list[dict] = []
        self._last = 0.0
        self._start = time.monotonic()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return
        self.history.append({"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}})
        now = time.monotonic()
        if now - self._last >= self.every_s or state.global_step >= state.max_steps:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in logs.items() if isinstance(v, (int, float)))
            self.logger.info(f"step {state.global_step}/{state.max_steps}: {shown}")
            self._last = now


def loss_curve_png(history: list[dict], path: Path, title: str, keys: tuple[str, ...] = ("loss",)) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    plotted = False
    for key in keys:
        points = [(h["step"], h[key]) for h in history if key in h]
        if points:
            ax.plot(*zip(*points), marker=".", label=key)
            plotted = True
    if not plotted:
        plt.close(fig)
        return None
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def write_training_record(out_dir: Path, record: dict) -> None:
    (Path(out_dir) / "phi4_training.json").write_text(json.dumps(record, indent=2, default=str))
