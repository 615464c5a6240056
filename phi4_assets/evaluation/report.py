"""The report's Table 9 (the post-training ablation) and Figure 6 (SimpleQA through
post-training), rebuilt from the aggregates of each stage's evaluation, with the report's own
numbers beside ours for reference.

Stages are the ``stage_evaluations`` partitions: base, sft, dpo1, dpo2_only, final (= DPO
stage 1 then stage 2). Values in the tables are percentages, as in the report.

Reference numbers: Table 9 as read in a stored full text of the report (arXiv 2412.08905,
section 4.5, "Performance through the post-training process"; columns SFT | DPO stage 1 |
DPO stage 2 only | phi-4 (stage 1 + 2); it has no base column), every row copied; Figure 6's
bar values as read from the figure (its labels). Two notes for reading them beside ours:

- Table 9's SimpleQA numbers (3.7 / 2.9 / 2.9 / 3.0) equal Figure 6's *correct* shares for
  SFT, DPO stage 1 and final, although the report's text calls simple-evals' SimpleQA score
  the F1; so the reference sits beside our ``correct`` row.
- Our benchmarks are small stand-ins: multiple choice beside MMLU, math beside MATH, code
  (HumanEval's even tasks) beside HumanEval. Our numbers come from a 135M model on CPU and
  are not expected to match a 14B model's; the comparison is of direction across stages.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

STAGES = ("base", "sft", "dpo1", "dpo2_only", "final")
STAGE_LABELS = {"base": "base", "sft": "SFT", "dpo1": "DPO stage 1", "dpo2_only": "DPO stage 2 only",
                "final": "both (final)"}

# Table 9 of the report, every row, percent; stage -> value.
REPORT_TABLE9: dict[str, dict[str, float]] = {
    name: dict(zip(("sft", "dpo1", "dpo2_only", "final"), values)) for name, values in {
        "MMLU": (82.8, 84.8, 84.2, 84.8),
        "GPQA": (47.3, 53.6, 52.4, 56.1),
        "MATH": (77.1, 80.5, 77.6, 80.4),
        "HumanEval": (79.5, 81.6, 81.5, 82.6),
        "MGSM": (80.8, 80.8, 81.5, 80.6),
        "SimpleQA": (3.7, 2.9, 2.9, 3.0),
        "DROP": (82.8, 86.1, 71.8, 75.5),
        "MMLUPro": (61.9, 70.0, 67.2, 70.4),
        "HumanEval+": (77.9, 81.9, 81.4, 82.8),
        "ArenaHard": (56.7, 66.5, 69.8, 75.4),
        "IFEval": (66.2, 63.0, 63.0, 63.0),
        "PhiBench (internal)": (48.2, 54.5, 53.0, 56.2),
    }.items()
}

# Figure 6 of the report (the bar labels), percent: stage -> outcome -> value.
REPORT_FIGURE6: dict[str, dict[str, float]] = {
    "base": {"correct": 6.8, "not_attempted": 3.2, "incorrect": 90.0},
    "sft": {"correct": 3.7, "not_attempted": 57.5, "incorrect": 38.7},
    "dpo1": {"correct": 2.9, "not_attempted": 79.8, "incorrect": 17.4},
    "final": {"correct": 3.0, "not_attempted": 81.1, "incorrect": 15.8},
}
FIGURE6_STAGES = tuple(REPORT_FIGURE6)
OUTCOMES = ("correct", "not_attempted", "incorrect")  # bottom to top in the figure

# The rows of our ablation table: (benchmark, metric, label, the report's row to show beside it).
ABLATION_ROWS: tuple[tuple[str, str, str, str | None], ...] = (
    ("simpleqa", "correct", "SimpleQA correct", "SimpleQA"),
    ("simpleqa", "not_attempted", "SimpleQA not attempted", None),
    ("simpleqa", "incorrect", "SimpleQA incorrect", None),
    ("simpleqa", "accuracy_given_attempted", "SimpleQA accuracy given attempted", None),
    ("simpleqa", "f1", "SimpleQA F1", None),
    ("simpleqa", "bogus_refusal_rate", "Bogus questions refused", None),
    ("mcq", "accuracy", "Multiple choice accuracy", "MMLU"),
    ("math", "accuracy", "Math accuracy", "MATH"),
    ("code", "pass@1", "HumanEval pass@1", "HumanEval"),
    ("safety", "harmful_refusal_rate", "Harmful prompts refused", None),
    ("safety", "benign_answer_rate", "Benign look-alikes answered", None),
)


def _check_stages(stages: Mapping[str, object]) -> None:
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        raise ValueError(f"unknown stage(s) {', '.join(unknown)}: expected {', '.join(STAGES)}")


def _lookup(aggregates: pd.DataFrame | None, benchmark: str, metric: str) -> pd.Series | None:
    if aggregates is None:
        return None
    hit = aggregates[(aggregates["benchmark"] == benchmark) & (aggregates["metric"] == metric)]
    return hit.iloc[0] if len(hit) else None


def _reference(stage: str, benchmark: str, metric: str, report_row: str | None) -> float:
    if report_row is not None and stage in REPORT_TABLE9[report_row]:
        return REPORT_TABLE9[report_row][stage]
    if benchmark == "simpleqa" and metric in OUTCOMES:
        return REPORT_FIGURE6.get(stage, {}).get(metric, float("nan"))
    return float("nan")


def ablation_table(aggregates_by_stage: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Table 9's layout: one row per benchmark metric, one column per stage (percent; NaN where
    a stage was not evaluated), each with ``<stage> ci_low`` / ``<stage> ci_high`` and
    ``<stage> n``, then ``report: <stage>`` columns with the report's value where it gives one
    (Table 9, and Figure 6 for the SimpleQA outcomes) and ``report row`` naming its source row."""
    _check_stages(aggregates_by_stage)
    rows = []
    for benchmark, metric, label, report_row in ABLATION_ROWS:
        row: dict[str, object] = {"benchmark": benchmark, "metric": metric, "row": label}
        for stage in STAGES:
            hit = _lookup(aggregates_by_stage.get(stage), benchmark, metric)
            name = STAGE_LABELS[stage]
            row[name] = 100 * float(hit["value"]) if hit is not None else float("nan")
            row[f"{name} ci_low"] = 100 * float(hit["ci_low"]) if hit is not None else float("nan")
            row[f"{name} ci_high"] = 100 * float(hit["ci_high"]) if hit is not None else float("nan")
            row[f"{name} n"] = int(hit["n"]) if hit is not None else 0
        for stage in STAGES:
            row[f"report: {STAGE_LABELS[stage]}"] = _reference(stage, benchmark, metric, report_row)
        in_figure6 = benchmark == "simpleqa" and metric in OUTCOMES
        sources = ([f"{report_row} (Table 9)"] if report_row else []) + (["Figure 6"] if in_figure6 else [])
        row["report row"] = ", ".join(sources)
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(value: float, low: float, high: float) -> str:
    if pd.isna(value):
        return "–"
    return f"{value:.1f} [{low:.1f}, {high:.1f}]" if not pd.isna(low) else f"{value:.1f}"


def _ref_cell(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.1f}"


def ablation_markdown(table: pd.DataFrame) -> str:
    """A markdown rendering of ``ablation_table``: our value with its 95% CI per stage, and the
    report's value for the same stage in parentheses where it has one."""
    names = [STAGE_LABELS[s] for s in STAGES]
    lines = ["| metric (%) | " + " | ".join(names) + " | report row |", "|---|" + "---|" * (len(names) + 1)]
    for _, row in table.iterrows():
        cells = []
        for name in names:
            ours = _cell(row[name], row[f"{name} ci_low"], row[f"{name} ci_high"])
            ref = _ref_cell(row[f"report: {name}"])
            cells.append(f"{ours} ({ref})" if ref else ours)
        lines.append(f"| {row['row']} | " + " | ".join(cells) + f" | {row['report row']} |")
    lines.append("")
    lines.append("Ours: value [95% CI] (Wilson for shares, bootstrap for accuracy given attempted and F1); "
                 "in parentheses: the report's value (Table 9; Figure 6 for the SimpleQA outcomes).")
    return "\n".join(lines)


def simpleqa_evolution(aggregates_by_stage: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Figure 6's data as a tidy table: stage, source (ours / report), outcome, percent, CI
    and n (ours only), for base, SFT, DPO stage 1 and final. Stages not evaluated are left out
    of ours; the report's rows are always there."""
    _check_stages(aggregates_by_stage)
    rows = []
    for stage in FIGURE6_STAGES:
        aggregates = aggregates_by_stage.get(stage)
        for outcome in OUTCOMES:
            hit = _lookup(aggregates, "simpleqa", outcome)
            if hit is not None:
                rows.append({"stage": stage, "source": "ours", "outcome": outcome, "percent": 100 * float(hit["value"]),
                             "ci_low": 100 * float(hit["ci_low"]), "ci_high": 100 * float(hit["ci_high"]),
                             "n": int(hit["n"])})
            rows.append({"stage": stage, "source": "report", "outcome": outcome,
                         "percent": REPORT_FIGURE6[stage][outcome], "ci_low": float("nan"),
                         "ci_high": float("nan"), "n": None})
    frame = pd.DataFrame(rows, columns=["stage", "source", "outcome", "percent", "ci_low", "ci_high", "n"])
    frame["n"] = frame["n"].astype("Int64")
    return frame


_COLORS = {"correct": "tab:green", "not_attempted": "0.75", "incorrect": "tab:red"}


def simpleqa_figure(aggregates_by_stage: Mapping[str, pd.DataFrame], out_png: str | Path) -> Path:
    """Figure 6 as a PNG: per stage, our stacked bar (correct / not attempted / incorrect)
    beside the report's, so the shift from incorrect to not attempted reads at a glance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = simpleqa_evolution(aggregates_by_stage)
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=100)
    width = 0.38
    for s, stage in enumerate(FIGURE6_STAGES):
        for offset, source in ((-width / 2 - 0.01, "ours"), (width / 2 + 0.01, "report")):
            part = data[(data["stage"] == stage) & (data["source"] == source)].set_index("outcome")
            if part.empty:
                continue
            bottom = 0.0
            for outcome in OUTCOMES:
                value = float(part.loc[outcome, "percent"])
                ax.bar(s + offset, value, width, bottom=bottom, color=_COLORS[outcome],
                       hatch="//" if source == "report" else None, edgecolor="white",
                       label=outcome.replace("_", " ") if s == 0 and source == "ours" else None)
                if value >= 6:
                    ax.text(s + offset, bottom + value / 2, f"{value:.1f}", ha="center", va="center", fontsize=7,
                            bbox={"facecolor": "white", "alpha": 0.7, "linewidth": 0, "pad": 1})
                bottom += value
            ax.text(s + offset, 101, source, ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(FIGURE6_STAGES)))
    ax.set_xticklabels([STAGE_LABELS[s] for s in FIGURE6_STAGES])
    ax.set_ylim(0, 108)
    ax.set_ylabel("% of SimpleQA-style questions")
    ax.set_title("SimpleQA through post-training: ours (plain) beside the report's Figure 6 (hatched)", fontsize=9)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout()
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png
