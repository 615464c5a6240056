"""What SFT and DPO share: run settings, precision, resumable work dirs, progress, loss curves."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from .settings import TrainSettings

__all__ = ["TrainSettings", "ProgressCallback", "last_checkpoint", "clear_work_dir", "loss_curve_png",
           "write_training_record", "save_trained"]

log = logging.getLogger(__name__)


def last_checkpoint(work_dir: Path) -> str | None:
    checkpoints = sorted(Path(work_dir).glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
    return str(checkpoints[-1]) if checkpoints else None


def save_trained(trainer, out_dir: Path, lora: bool) -> bool:
    """Save the trained model and its tokenizer in ``out_dir``; True in the process that keeps
    going (the only one in process, the main one of a launched job).

    In process, and for LoRA (merged into the base weights first, on the main process): the
    model's own ``save_pretrained``. A launched job without LoRA saves through
    ``Trainer.save_model`` on every process, which gathers weights sharded by FSDP or ZeRO-3 (a
    collective every process must join) and writes from the main process only."""
    main = trainer.accelerator.is_main_process
    if trainer.accelerator.num_processes > 1 and not lora:
        trainer.save_model(str(out_dir))
        return main
    if not main:
        return False
    trained = trainer.model.merge_and_unload() if lora else trainer.model
    trained.save_pretrained(out_dir)
    trainer.processing_class.save_pretrained(out_dir)
    return True


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
