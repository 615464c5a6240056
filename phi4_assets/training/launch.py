"""Training in other processes: ``accelerate launch`` running ``training.worker`` on N processes.

The profile's ``train_launcher`` picks where a model asset trains:

- ``inprocess`` (default): TRL in the asset's own process (``train_sft`` / ``train_dpo``).
- ``accelerate``: ``accelerate launch --num_processes N [--config_file F] -m
  phi4_assets.training.worker JOB``. Every process runs the same TRL trainer (DDP: NCCL on GPUs,
  gloo on CPUs; a config file can ask for DeepSpeed or FSDP instead), and the main process saves
  the model, the loss curve and the result. The asset starts it through Dagster Pipes, so the
  main process's progress lines reach the run's logs and its result (metrics, loss history)
  comes back as a Pipes message; the model directory, checkpoints and resume are the same as in
  process. DDP was run here (2 CPU processes over gloo, in the tests); DeepSpeed and FSDP were
  not (no GPU): for them the model is saved by ``Trainer.save_model`` on every process
  (``common.save_trained``), which gathers the sharded weights.

The job is a folder: ``job.json`` (what to train, where to write, the settings) and
``data.parquet`` (the rows or pairs as the asset's table had them).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from ..core.served import free_port
from .settings import TrainSettings

KINDS = ("sft", "dpo")


def write_job(job_dir: Path, kind: str, model_dir: str, data: pd.DataFrame, out_dir: Path, work_dir: Path,
              settings: TrainSettings) -> Path:
    """The job folder for ``training.worker``; returns ``job.json``'s path."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    job_dir = Path(job_dir)
    job_dir.mkdir(parents=True, exist_ok=True)
    data.to_parquet(job_dir / "data.parquet", index=False)
    job = {"kind": kind, "model_dir": str(model_dir), "data": str(job_dir / "data.parquet"), "out_dir": str(out_dir),
           "work_dir": str(work_dir), "settings": asdict(settings), "result": str(job_dir / "result.json")}
    path = job_dir / "job.json"
    path.write_text(json.dumps(job, indent=2))
    return path


def read_job(path: Path) -> tuple[dict, TrainSettings, list[dict]]:
    """(job, its settings, its rows as ``DataFrame.to_dict(orient="records")`` gives them)."""
    job = json.loads(Path(path).read_text())
    return job, TrainSettings(**job["settings"]), pd.read_parquet(job["data"]).to_dict(orient="records")


def accelerate_command(job_path: Path, num_processes: int, config_file: str | None = None) -> list[str]:
    """The ``accelerate launch`` command line for ``job_path``. Without a config file, more than
    one process uses accelerate's DDP launcher (torchrun), which on a machine without CUDA runs
    the processes on the CPU over gloo (the worker tells TRL ``use_cpu``, as in process)."""
    if num_processes < 1:
        raise ValueError(f"num_processes must be >= 1; got {num_processes}")
    command = [sys.executable, "-m", "accelerate.commands.launch"]
    if config_file:
        command += ["--config_file", str(config_file)]
    command += ["--num_processes", str(num_processes), "--num_machines", "1", "--dynamo_backend", "no"]
    if num_processes > 1 and not config_file:
        command += ["--multi_gpu"]  # accelerate's name for its torchrun launcher; CPUs too, see above
    if num_processes > 1:
        command += ["--main_process_port", str(free_port())]  # two launches at once never collide
    return command + ["-m", "phi4_assets.training.worker", str(job_path)]


def launch_identity(launcher: str, processes: int, config_file: str | None) -> dict | None:
    """What a launched job adds to the model's version (None in process, so those versions stay
    as they were): the number of processes (the global batch is theirs times the per-device
    batch) and the accelerate config file's content (DeepSpeed / FSDP settings)."""
    if launcher == "inprocess":
        return None
    config = None
    if config_file:
        from ..core.ids import file_digest

        config = file_digest(Path(config_file))
    return {"launcher": launcher, "processes": processes, "accelerate_config": config}


def read_result(job_dir: Path) -> dict:
    """What the main process wrote when training ended (``train_sft`` / ``train_dpo``'s result)."""
    path = Path(job_dir) / "result.json"
    if not path.exists():
        raise RuntimeError(f"the training processes ended without a result ({path} is missing)")
    return json.loads(path.read_text())
