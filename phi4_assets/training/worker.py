"""One training process of a launched job (``training.launch``):

    accelerate launch ... -m phi4_assets.training.worker JOB_DIR/job.json

Every process builds the same TRL trainer; TRL and accelerate split the batches and synchronise
the gradients. Only the main process talks to Dagster (Pipes, when the job was started through
``PipesSubprocessClient``): its progress lines go to the run's logs, and its result (metrics,
loss history, loss curve path) is written to ``result.json`` and sent as a Pipes message.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path

from .launch import read_job


def _is_main() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m phi4_assets.training.worker JOB_DIR/job.json", file=sys.stderr)
        return 2
    job, settings, rows = read_job(Path(argv[0]))
    with ExitStack() as stack:
        pipes = None
        if _is_main() and os.environ.get("DAGSTER_PIPES_CONTEXT"):
            from dagster_pipes import open_dagster_pipes

            pipes = stack.enter_context(open_dagster_pipes())
        logger = pipes.log if pipes is not None else None
        if job["kind"] == "sft":
            from .sft import train_sft as train
        else:
            from .dpo import train_dpo as train
        result = train(job["model_dir"], rows, Path(job["out_dir"]), Path(job["work_dir"]), settings, logger)
        if result is not None:  # the main process
            Path(job["result"]).write_text(json.dumps(result, default=float))
            if pipes is not None:
                pipes.report_custom_message({"result": str(job["result"])})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
