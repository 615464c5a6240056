"""DPO stage 1 with and without ``bogus_refusal_over_answer`` pairs in its mix, from one
``sft_model``: what those pairs do, with the SFT model and the PTS pairs held fixed.

    .venv/bin/python bench/bogus_pairs_stage1.py --warehouse <state>/warehouse.duckdb [--out DIR]

For a warehouse made before the mix pools had bogus pairs: it samples that run's ``sft_model`` on
stage 1's half of the kept bogus questions (as ``dpo1_mix_pairs`` now does: ``answer_samples``
samples of 4 x ``dpo_tokens`` tokens), builds the pairs with ``decision.bogus_pairs``, and trains
stage 1 twice with the small profile's ``dpo_train``: on the run's own ``pts_dpo_pairs``, and on
its PTS pairs plus ``stage_mix`` over the pool with the bogus pairs added (the same floor, every
kind in turn). Each model is graded on SimpleQA's real and bogus questions (greedy, rules).
1 torch thread; about 25 minutes on 2 shared cores. (On a newer warehouse, ``bench/stage_ablation.py
--stage dpo1 all no_bogus`` asks the same question the other way round.)"""
import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import duckdb  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
from phi4_assets.config.profiles import load_profile  # noqa: E402
from phi4_assets.defs.training import settings_from  # noqa: E402
from phi4_assets.evaluation.rule_grader import RuleGrader  # noqa: E402
from phi4_assets.evaluation.runner import evaluate_model  # noqa: E402
from phi4_assets.hallucination import decision  # noqa: E402
from phi4_assets.hallucination.rules import METHOD_QUALITY  # noqa: E402
from phi4_assets.models.generation import chat_prompt, load_policy, sample_responses  # noqa: E402
from phi4_assets.training.dpo import train_dpo  # noqa: E402
from phi4_assets.training.mix import stage_half, stage_mix  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--warehouse", required=True)
parser.add_argument("--out", default=None, help="where the two models go (default: a temporary directory)")
args = parser.parse_args()
WH = args.warehouse
log = logging.getLogger('abl')
profile = load_profile('small')
with duckdb.connect(WH, read_only=True) as con:
    pts = con.execute("select * from phi4.pts_dpo_pairs").fetchdf()
    if (pts.kind == decision.BOGUS_KIND).any():
        sys.exit(f"{WH}: its mix already has bogus pairs; use bench/stage_ablation.py --stage dpo1 all no_bogus")
    pool = con.execute("select * from phi4.dpo1_mix_pairs").fetchdf()
    refusals = con.execute("select * from phi4.refusals where bogus").fetchdf()
    bogus_q = con.execute("select id, method from phi4.bogus_questions where kept").fetchdf()
    sft = con.execute("select path from phi4.sft_model").fetchall()[0][0]
    items = con.execute("select * from phi4.eval_sets where benchmark='simpleqa'").fetchdf()
out = Path(args.out) if args.out else Path(__import__("tempfile").mkdtemp(prefix="bogus_pairs_stage1_"))
# today's rating: place swaps are dropped
keep = set(bogus_q[bogus_q.method.map(METHOD_QUALITY) >= profile.bogus_min_quality].id)
refusals = refusals[refusals.target_id.isin(keep)]
ids = stage_half(refusals.target_id, 'dpo1')
text = dict(zip(refusals.target_id, refusals.question))
model, tok = load_policy(sft)
samples = sample_responses(model, tok, [chat_prompt(tok, text[b]) for b in ids], profile.answer_samples,
                           temperature=profile.answer_temperature, max_new_tokens=4 * profile.dpo_tokens, seed=1)
graded = {b: decision.graded_bogus_samples(text[b], [(f"s-{b}-{i}", s.text) for i, s in enumerate(ss)])
          for b, ss in zip(ids, samples)}
rows = decision.bogus_pairs({b: text[b] for b in ids}, graded,
                            {r.target_id: (r.refusal, r.id) for r in refusals.itertuples()},
                            encode=lambda t: tok(t, add_special_tokens=False)["input_ids"], decode=tok.decode,
                            n_tokens=profile.dpo_tokens)
print(f"bogus questions in stage 1's half: {len(ids)}; pairs: {len(rows)}", flush=True)
for r in rows:
    print("  ", r["prompt"][:70], "|", r["chosen"], "|", r["rejected"])
bogus = pd.DataFrame([{**r, "id": f"bogus-{r['question_id']}", "source": "hallucination", "problem_id": r["question_id"]}
                      for r in rows])
main = pts[pts.source.str.startswith("pts")]
variants = {
    "as demo E (no bogus pairs)": pts,
    "+ bogus pairs in the pool": pd.concat([main, pd.DataFrame(stage_mix(pd.concat([pool, bogus], ignore_index=True),
                                                                        len(main), profile.pts_mix_share, profile.mix_floor))],
                                           ignore_index=True),
}
settings = settings_from(profile.dpo_train)
def row(name, n, kinds, g, s):
    real, bog = g[~g.bogus.astype(bool)], g[g.bogus.astype(bool)]
    pct = lambda f, x: 100 * float((f.grade == x).mean())
    return f"| {name} | {n} | {kinds} | {pct(real,'A'):.1f} | {pct(real,'C'):.1f} | {pct(real,'B'):.1f} | {pct(bog,'C'):.1f} | {s:.0f} |"
print("| variant | pairs | by kind | correct | not attempted | incorrect | bogus refused | s |", flush=True)
t = time.monotonic(); g, _ = evaluate_model(sft, items, grader=RuleGrader(), batch_size=16, logger=log)
print(row("none (sft_model)", 0, "", g, time.monotonic() - t), flush=True)
for i, (name, pairs) in enumerate(variants.items()):
    kinds = ", ".join(f"{k} {n}" for k, n in pairs.kind.value_counts().sort_index().items())
    t = time.monotonic()
    train_dpo(sft, pairs.to_dict(orient="records"), out / f"m{i}", out / f"w{i}", settings, log)
    g, _ = evaluate_model(str(out / f"m{i}"), items, grader=RuleGrader(), batch_size=16, logger=log)
    print(row(name, len(pairs), kinds, g, time.monotonic() - t), flush=True)
