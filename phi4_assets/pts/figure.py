"""The report's Figure 3 view of a searched response: its tokens with pivotal tokens marked (up
green, down red), and the p(success) estimates along the prefixes the search visited."""

from __future__ import annotations

from pathlib import Path


def draw_search(panels: list[dict], path: Path) -> Path:
    """``panels``: dicts with ``title``, ``tokens`` (decoded strings), ``estimates`` (prefix length
    -> p), ``pivots`` (index -> delta). One row of two plots per panel."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(panels), 1, figsize=(11, 3.2 * len(panels)), dpi=100, squeeze=False)
    for ax, panel in zip(axes[:, 0], panels):
        n = len(panel["tokens"])
        points = sorted(panel["estimates"].items())
        ax.step([k for k, _ in points], [v for _, v in points], where="post", color="0.6", lw=1)
        ax.plot([k for k, _ in points], [v for _, v in points], "o", color="tab:blue", ms=4,
                label="p(success | prefix) estimated")
        for index, delta in panel["pivots"].items():
            ax.axvline(index + 0.5, color="tab:green" if delta > 0 else "tab:red", alpha=0.5, lw=6)
        ax.set_xlim(-0.5, n + 0.5)
        ax.set_ylim(-0.05, 1.05)
        ax.set_ylabel("p(success)")
        ax.set_title(panel["title"], fontsize=9, loc="left")
        step = max(1, n // 60)
        ax.set_xticks(range(0, n, step))
        ax.set_xticklabels([panel["tokens"][i].replace("\n", "\\n")[:8] for i in range(0, n, step)], rotation=90,
                           fontsize=6)
        for label, i in zip(ax.get_xticklabels(), range(0, n, step)):
            if i in panel["pivots"]:
                label.set_color("tab:green" if panel["pivots"][i] > 0 else "tab:red")
                label.set_fontweight("bold")
        ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
