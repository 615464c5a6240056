"""The ``phi4`` command line."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import warnings

from .. import __version__
from .evaluate import add_eval_parser
from .ops import add_estimate_parser, add_lineage_parser
from ..config.profiles import load_profile
from ..config.settings import Paths


def _runtime(device: str) -> dict:
    """Where the policy would run: the profile's ``device`` resolved, the dtype there, and torch's view."""
    import torch

    from ..core.hardware import preferred_dtype_name, resolve_device

    try:
        resolved = resolve_device(device)
    except RuntimeError as e:
        return {"device": device, "error": str(e), "torch": torch.__version__, "cuda_available": False}
    return {"device": resolved, "dtype": preferred_dtype_name(resolved), "torch": torch.__version__,
            "cuda_available": torch.cuda.is_available(),
            "gpu": torch.cuda.get_device_name(0) if resolved == "cuda" else None}


def _info(args: argparse.Namespace) -> int:
    profile = load_profile(args.profile)
    paths = Paths.from_env()
    info = {"version": __version__, "profile": dataclasses.asdict(profile),
            "paths": {k: str(v) for k, v in dataclasses.asdict(paths).items()},
            "runtime": {**_runtime(profile.device), "policy_backend": profile.policy_backend}}
    print(json.dumps(info, indent=2))
    return 0


def _demo(args: argparse.Namespace) -> int:
    if args.profile:
        load_profile(args.profile)  # a bad name or profile fails here, before anything runs
        os.environ["PHI4_PROFILE"] = args.profile  # the resources read it when the definitions load
    from .demo import dry_run, run_demo, selected_stages

    select = [name.strip() for name in args.select.split(",")] if args.select else None
    if args.dry_run:
        print(dry_run(selected_stages(args.stop_after, args.start_from, select)))
        return 0
    return run_demo(args.stop_after, args.start_from, select=select, rerun=args.rerun)


def main(argv: list[str] | None = None) -> int:
    # Dagster flags beta parameters (data_version, backfill_policy, pool) on every import.
    warnings.filterwarnings("ignore", message=".*is currently in beta.*")
    parser = argparse.ArgumentParser(prog="phi4", description="phi4-posttrain command line")
    parser.add_argument("--version", action="version", version=f"phi4-posttrain {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    info = commands.add_parser("info", help="print the active profile and paths as JSON")
    info.add_argument("--profile", default=None, help="tiny | small | full (default: $PHI4_PROFILE or small)")
    info.set_defaults(run=_info)
    demo = commands.add_parser("demo", help="materialize the whole graph on the active profile, stage by stage")
    demo.add_argument("--stop-after", default=None, help="stop after the stage of this name (e.g. sources)")
    demo.add_argument("--from", dest="start_from", default=None,
                      help="start at the stage of this name (e.g. judge); earlier stages must be materialized")
    demo.add_argument("--select", default=None, metavar="STAGE[,STAGE]",
                      help="run only these stages (their inputs must be materialized)")
    demo.add_argument("--dry-run", action="store_true",
                      help="print the stages and assets that would run and the teacher calls and tokens they "
                           "would make (cache-aware), and run nothing")
    demo.add_argument("--rerun", action="store_true",
                      help="materialize every stage, also those whose assets are up to date (skipped by default)")
    demo.add_argument("--profile", default=None, help="tiny | small | full (default: $PHI4_PROFILE or small)")
    demo.set_defaults(run=_demo)
    add_eval_parser(commands)
    add_lineage_parser(commands)
    add_estimate_parser(commands)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"phi4: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
