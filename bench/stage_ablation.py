"""Which pairs of a DPO stage move SimpleQA: train the stage from ``sft_model`` on subsets of its
pair table and evaluate each model on the SimpleQA-style real and bogus questions of ``eval_sets``
(greedy, the rule grader), side by side with ``sft_model`` itself.

- ``--stage dpo1``: subsets of ``pts_dpo_pairs`` with the profile's ``dpo_train`` settings (as
  ``dpo1_model`` is trained);
- ``--stage dpo2``: subsets of ``judge_dpo_pairs`` with ``dpo2_train``, from ``sft_model`` (as
  ``dpo2_only_model`` is trained), so the stage's own effect is not mixed with stage 1's.

It reads a materialized warehouse (the state of a ``make demo`` run) and writes nothing there;
models go to a scratch directory. Each variant trains for a few minutes on 2 cores.

    .venv/bin/python bench/stage_ablation.py --stage dpo1 [--warehouse data/warehouse.duckdb] [VARIANT ...]

Variants: all, main_only (the PTS or judge pairs alone), mix_only (the mixed-in unknown + safety
pairs alone), no_safety (neither kind of safety pair), no_hallucination (no A.1 pair), no_harmful
(no "refuse > comply" pair), no_bogus (no "bogus refusal > answer" pair); and the stage's main pairs with its mix drawn again
from its pool (``dpo1_mix_pairs`` / ``dpo2_mix_pairs``) by each ``balance`` of ``training.mix.pick``:
mix:directions, mix:kinds, mix:pool. ``none`` is always printed first: ``sft_model`` itself.
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
from phi4_assets.evaluation.rule_grader import RuleGrader  # noqa: E402
from phi4_assets.evaluation.runner import evaluate_model  # noqa: E402
from phi4_assets.config.profiles import load_profile  # noqa: E402
from phi4_assets.training.dpo import train_dpo  # noqa: E402
from phi4_assets.training.mix import BALANCES, stage_mix  # noqa: E402

SAFETY_KINDS = ("safety_refuse_over_comply", "benign_answer_over_refusal")
A1_KINDS = ("answer_over_refusal", "refusal_over_wrong", "bogus_refusal_over_answer")
MAIN_SOURCES = {"dpo1": lambda s: s.str.startswith("pts"), "dpo2": lambda s: s == "judge"}
STAGES = {"dpo1": ("pts_dpo_pairs", "dpo_train"), "dpo2": ("judge_dpo_pairs", "dpo2_train")}
POOLS = {"dpo1": ("dpo1_mix_pairs", "pts_mix_share"), "dpo2": ("dpo2_mix_pairs", "judge_mix_share")}
VARIANTS = {
    "all": lambda p, main: p,
    "main_only": lambda p, main: p[main(p["source"])],
    "mix_only": lambda p, main: p[~main(p["source"])],
    "no_safety": lambda p, main: p[~p["kind"].isin(SAFETY_KINDS)],
    "no_hallucination": lambda p, main: p[~p["kind"].isin(A1_KINDS)],
    "no_harmful": lambda p, main: p[p["kind"] != "safety_refuse_over_comply"],
    "no_bogus": lambda p, main: p[p["kind"] != "bogus_refusal_over_answer"],
    **{f"mix:{b}": None for b in BALANCES},  # drawn again from the pool (``_redrawn``)
}


def _redrawn(pairs, stage: str, pool, balance: str, profile):
    """The stage's main pairs and its mix drawn again from ``pool`` by ``balance``."""
    import pandas as pd
    ours = pairs[MAIN_SOURCES[stage](pairs["source"])]
    share = getattr(profile, POOLS[stage][1])
    mix = pd.DataFrame(stage_mix(pool, len(ours), share, profile.mix_floor, balance))
    return pd.concat([ours, mix], ignore_index=True)


def _row(name: str, pairs: int, kinds: str, graded, seconds: float) -> str:
    real, bogus = graded[~graded["bogus"].astype(bool)], graded[graded["bogus"].astype(bool)]
    share = lambda frame, grade: 100 * float((frame["grade"] == grade).mean())  # noqa: E731
    return (f"| {name} | {pairs} | {kinds} | {share(real, 'A'):.1f} | {share(real, 'C'):.1f} | "
            f"{share(real, 'B'):.1f} | {share(bogus, 'C'):.1f} | {seconds:.0f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=sorted(STAGES), required=True)
    parser.add_argument("--warehouse", default="data/warehouse.duckdb")
    parser.add_argument("--profile", default="small", help="whose training settings to train with")
    parser.add_argument("variants", nargs="*", help=f"some of {', '.join(VARIANTS)} (default: all of them)")
    args = parser.parse_args()
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; variants: {', '.join(VARIANTS)}")
    table, settings_field = STAGES[args.stage]
    with duckdb.connect(args.warehouse, read_only=True) as con:
        pairs = con.execute(f"SELECT * FROM phi4.{table}").fetchdf()
        pool = con.execute(f"SELECT * FROM phi4.{POOLS[args.stage][0]}").fetchdf()
        sft = con.execute("SELECT path FROM phi4.sft_model").fetchall()[0][0]
        items = con.execute("SELECT * FROM phi4.eval_sets WHERE benchmark = 'simpleqa'").fetchdf()
    profile = load_profile(args.profile)
    settings = settings_from(getattr(profile, settings_field))
    log = logging.getLogger("stage_ablation")
    scratch = Path(tempfile.mkdtemp(prefix="stage_ablation_"))
    print(f"{args.stage} from {sft} on subsets of {len(pairs)} {table}; SimpleQA {len(items)} items; "
          f"models in {scratch}", flush=True)
    print("| pairs trained on | pairs | by kind | correct | not attempted | incorrect | bogus refused | s |")
    print("|---|---|---|---|---|---|---|---|")
    started = time.monotonic()
    graded, _ = evaluate_model(sft, items, grader=RuleGrader(), batch_size=16, logger=log)
    print(_row("none (`sft_model`)", 0, "", graded, time.monotonic() - started), flush=True)
    for name in args.variants or list(VARIANTS):
        rows = (_redrawn(pairs, args.stage, pool, name.split(":")[1], profile)
                if name.startswith("mix:") else VARIANTS[name](pairs, MAIN_SOURCES[args.stage]))
        kinds = ", ".join(f"{k} {n}" for k, n in rows["kind"].value_counts().sort_index().items())
        started = time.monotonic()
        out = scratch / name
        train_dpo(sft, rows.to_dict(orient="records"), out, scratch / ".work" / name, settings, log)
        graded, _ = evaluate_model(str(out), items, grader=RuleGrader(), batch_size=16, logger=log)
        print(_row(name, len(rows), kinds, graded, time.monotonic() - started), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
