"""The estimate as text (``phi4 estimate``'s table)."""

from __future__ import annotations

from .cost import cost_summary, price_hint, usd
from .core import Estimate


def _fmt(value, unknown: str = "?") -> str:
    if value is None:
        return unknown
    if isinstance(value, float):
        return f"{value:.0f}"
    return str(value)


def _marked(value, *, partial: bool = False, upper_bound: bool = False, mark: str = "", money: bool = False,
            approximate: bool = False) -> str:
    """A table cell: ``?`` unknown, ``~`` approximate, ``+?`` more not counted, ``(max)`` an upper bound."""
    if value is None:
        return "?"
    return (f"{'~' if approximate else ''}{usd(value) if money else _fmt(value)}{'+?' if partial else ''}{mark}"
            f"{' (max)' if upper_bound and value else ''}")


def render_text(result: Estimate) -> str:
    priced = result.price is not None
    header = ["asset", "partition", "task", "generator", "requests", "calls", "cached", "to call", "prompt",
              "completion", "tokens", *(["cost"] if priced else [])]
    rows = []
    for line in result.lines:
        requests = _fmt(line.requests) + {"upper bound": " (max)", "unknown": ""}.get(line.requests_basis, "")
        bound = line.tokens_are_upper_bound
        prompt = "-" if line.prompt_basis == "none" else _marked(
            line.prompt_tokens, approximate=line.prompt_basis == "approximation",
            mark=" (meas.)" if line.prompt_basis == "measured" else "")
        completion = "-" if line.tokens_basis == "none" else _marked(
            line.completion_tokens, upper_bound=bound, mark=" (meas.)" if line.tokens_basis == "measured" else "")
        partial = line.tokens_are_partial
        rows.append([line.asset, line.partition or "-", line.task, line.generator, requests, _fmt(line.calls),
                     _fmt(line.cached), _fmt(line.to_call), prompt, completion,
                     _marked(line.tokens, partial=partial, upper_bound=bound),
                     *([_marked(line.cost, partial=partial, upper_bound=bound, money=True)] if priced else [])])
    totals = result.totals()

    def total(name: str, upper_bound: bool = False, money: bool = False, approximate: bool = False) -> str:
        t = totals[name]
        return _marked(t["value"], partial=not t["complete"], upper_bound=upper_bound, money=money,
                       approximate=approximate)

    rows.append(["total", "", "", "", *(total(k) for k in ("requests", "calls", "cached", "to_call")),
                 total("prompt_tokens", approximate=any(line.prompt_basis == "approximation" for line in result.lines)),
                 total("completion_tokens", totals["tokens_upper_bound"]),
                 total("tokens", totals["tokens_upper_bound"]),
                 *([total("cost", totals["cost_upper_bound"], money=True)] if priced else [])])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = [f"profile {result.profile}; teacher {result.teacher or 'unknown'} ({result.teacher_note})",
           result.prompt_note, ""]
    for i, row in enumerate([header, *rows]):
        if i == len(rows):
            out.append("  ".join("-" * w for w in widths))
        out.append("  ".join(str(c).ljust(w) if j < 4 else str(c).rjust(w) for j, (c, w) in enumerate(zip(row, widths)))
                   .rstrip())
    out.append("")
    out.append(cost_summary(result.priced_model, result.price, totals["cost"]["value"], totals["cost"]["complete"],
                            totals["cost_upper_bound"]))
    unpriced = dict.fromkeys(m for line in result.lines for m in line.unpriced if m != result.priced_model)
    out += [price_hint(model) for model in unpriced]
    out.append("(max): an upper bound. ?: unknown. +?: more not counted. ~: counted with another model's "
               "tokenizer. (meas.): the mean of cached calls.")
    out.append("Requests, per line:")
    for line in result.lines:
        where = f"{line.asset} [{line.partition}]" if line.partition else line.asset
        tokens = f"; tokens: {line.tokens_note}" if line.tokens_note else ""
        out.append(f"  {where} {line.task}: {line.requests_basis}: {line.note}{tokens}")
    if result.skipped:
        out.append(f"no teacher calls: {', '.join(result.skipped)}")
    return "\n".join(out)
