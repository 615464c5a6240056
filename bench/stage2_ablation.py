"""Which pairs of DPO stage 2 move SimpleQA: train stage 2 from ``sft_model`` (as
``dpo2_only_model`` is trained) on subsets of ``judge_dpo_pairs`` and evaluate each model on the
SimpleQA-style real and bogus questions of ``eval_sets`` (greedy, the rule grader).

It reads a materialized warehouse (the state of a ``make demo`` run) and writes nothing there;
models go to a scratch directory. Each variant trains for a few minutes on 2 cores.

    .venv/bin/python bench/stage2_ablation.py [--warehouse data/warehouse.duckdb] [VARIANT ...]

Variants: all, judge_only, mix_only, no_safety (neither kind of safety pair), no_harmful (no
"refuse > comply" pair).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from phi4_assets.defs.training import settings_from  # noqa: E402
from phi4_assets.evaluation.graders import RuleGrader  # noqa: E402
from phi4_assets.evaluation.runner import evaluate_model  # noqa: E402
from phi4_assets.profiles import load_profile  # noqa: E402
from phi4_assets.training.dpo import train_dpo  # noqa: E402

SAFETY_KINDS = ("safety_refuse_over_comply", "benign_answer_over_refusal")
VARIANTS = {
    "all": lambda p: p,
    "judge_only": lambda p: p[p["source"] == "judge"],
    "mix_only": lambda p: p[p["source"] != "judge"],
    "no_safety": lambda p: p[~p["kind"].isin(SAFETY_KINDS)],
    "no_harmful": lambda p: p[p["kind"] != "safety_refuse_over_comply"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warehouse", default="data/warehouse.duckdb")
    parser.add_argument("--profile", default="small", help="whose dpo2_train settings to train with")
    parser.add_argument("variants", nargs="*", help=f"some of {', '.join(VARIANTS)} (default: all of them)")
    args = parser.parse_args()
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; variants: {', '.join(VARIANTS)}")
    args.variants = args.variants or list(VARIANTS)
    with duckdb.connect(args.warehouse, read_only=True) as con:
        pairs = con.execute("SELECT * FROM phi4.judge_dpo_pairs").fetchdf()
        sft = con.execute("SELECT path FROM phi4.sft_model").fetchall()[0][0]
        items = con.execute("SELECT * FROM phi4.eval_sets WHERE benchmark = 'simpleqa'").fetchdf()
    settings = settings_from(load_profile(args.profile).dpo2_train)
    log = logging.getLogger("stage2_ablation")
    scratch = Path(tempfile.mkdtemp(prefix="stage2_ablation_"))
    print(f"stage 2 from {sft} on subsets of {len(pairs)} judge_dpo_pairs; SimpleQA {len(items)} items; "
          f"models in {scratch}", flush=True)
    print("variant      pairs  refuse>comply  real: correct / not attempted / incorrect (%)  bogus refused (%)")
    for name in args.variants:
        rows = VARIANTS[name](pairs)
        started = time.monotonic()
        out = scratch / name
        train_dpo(sft, rows.to_dict(orient="records"), out, scratch / ".work" / name, settings, log)
        graded, _ = evaluate_model(str(out), items, grader=RuleGrader(), batch_size=16, logger=log)
        real, bogus = graded[~graded["bogus"].astype(bool)], graded[graded["bogus"].astype(bool)]
        share = lambda frame, grade: 100 * float((frame["grade"] == grade).mean())  # noqa: E731
        print(f"{name:11s} {len(rows):6d} {int((rows['kind'] == 'safety_refuse_over_comply').sum()):14d}  "
              f"{share(real, 'A'):5.1f} / {share(real, 'C'):5.1f} / {share(real, 'B'):5.1f}"
              f"{share(bogus, 'C'):28.1f}   ({time.monotonic() - started:.0f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
