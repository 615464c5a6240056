"""A batch that rows join and leave between decode steps (continuous batching), over the model's
own ``DynamicCache``.

``decode.decode`` decodes one batch to its end: rows that end leave it, but none can join, so a
server that decodes each batch of requests to its end keeps a request that arrives meanwhile
waiting, and the batch's last steps run on its few longest replies. ``RunningBatch`` keeps one
batch running: ``join`` prefills new prompts (left-padded, only the last position's logits) and
appends their rows to the batch, ``step`` draws one token for every row and returns the rows that
ended, so a caller answers each as soon as it ends and lets the next request in.

How rows of different lengths share one cache: every row is left-padded to the batch's length,
its padding masked. A joining group's KV cache is padded on the left with zeros (masked) to the
running batch's length, or the running batch's to the group's, and the two are concatenated along
the batch; positions follow each row's own mask, so a row's arithmetic is its prompt's alone up
to rounding (exactly in float32: a masked position has weight 0). When rows leave, the columns
that every remaining row masks are cut from the left, so the batch is as long as its longest
live row, not as every row it ever held.

What a step computes is ``decode``'s: each row's next token from ``choose`` (greedy by default,
or a row's own chooser, e.g. ``sampling.TopKTopPSampling.draw``; rows sharing a chooser are drawn
together), a row ending at a stop token (not kept) or at its token budget.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from .decode import greedy_choice, next_logits, prefill


@dataclass(eq=False)
class Row:
    tag: Any  # the caller's (a request)
    budget: int
    choose: Callable[[torch.Tensor], torch.Tensor]
    prompt_tokens: int
    token_ids: list[int] = field(default_factory=list)
    finished: bool = False  # ended with a stop token (not cut at its budget)


class RunningBatch:
    def __init__(self, model, stop_ids: Collection[int], pad_token_id: int = 0):
        self.model = model
        self.stops = set(stop_ids)
        self.pad = pad_token_id
        self.rows: list[Row] = []
        self.cache = None  # DynamicCache of the live rows
        self.mask: torch.Tensor | None = None  # (rows, length)
        self.next_position: torch.Tensor | None = None  # (rows, 1)
        self.logits: torch.Tensor | None = None  # (rows, vocab): the next token's, not drawn yet

    def __len__(self) -> int:
        return len(self.rows)

    @torch.inference_mode()
    def join(self, prompts: Sequence[Sequence[int]], budgets: Sequence[int], tags: Sequence[Any],
             choosers: Sequence[Callable[[torch.Tensor], torch.Tensor]] | None = None) -> list[Row]:
        """Prefill ``prompts`` (token ids) as new rows; returns the rows with no budget, which end
        at once (nothing decoded). ``choosers``: each row's (default greedy)."""
        from transformers import DynamicCache

        choosers = list(choosers) if choosers is not None else [greedy_choice] * len(prompts)
        new = [Row(tag, int(b), c, len(p)) for p, b, tag, c in zip(prompts, budgets, tags, choosers)]
        done = [r for r in new if r.budget <= 0]
        keep = [i for i, r in enumerate(new) if r.budget > 0]
        if not keep:
            return done
        prompts = [list(prompts[i]) for i in keep]
        new = [new[i] for i in keep]
        device = self.model.device
        length = max(len(p) for p in prompts)
        ids = torch.tensor([[self.pad] * (length - len(p)) + p for p in prompts], device=device)
        mask = torch.tensor([[0] * (length - len(p)) + [1] * len(p) for p in prompts], device=device)
        cache = DynamicCache()
        logits, positions = prefill(self.model, ids, mask, cache)
        if not self.rows:
            self.cache, self.mask, self.logits = cache, mask, logits
            self.next_position = positions[:, -1:] + 1
        else:
            running, joining = self.mask.shape[1], mask.shape[1]
            if joining < running:
                _pad_left(cache, running - joining)
                mask = F.pad(mask, (running - joining, 0))
            elif running < joining:
                _pad_left(self.cache, joining - running)
                self.mask = F.pad(self.mask, (joining - running, 0))
            for mine, theirs in zip(self.cache.layers, cache.layers):
                mine.keys = torch.cat([mine.keys, theirs.keys], dim=0)
                mine.values = torch.cat([mine.values, theirs.values], dim=0)
            self.mask = torch.cat([self.mask, mask], dim=0)
            self.next_position = torch.cat([self.next_position, positions[:, -1:] + 1], dim=0)
            self.logits = torch.cat([self.logits, logits], dim=0)
        self.rows += new
        return done

    @torch.inference_mode()
    def step(self) -> list[Row]:
        """One token for every row; returns the rows that ended (no longer in the batch)."""
        if not self.rows:
            return []
        tokens = torch.empty(len(self.rows), dtype=torch.long, device=self.logits.device)
        groups: dict[int, list[int]] = {}
        for j, row in enumerate(self.rows):
            groups.setdefault(id(row.choose), []).append(j)
        for members in groups.values():
            index = torch.tensor(members, device=tokens.device)
            drawn = self.rows[members[0]].choose(self.logits[index].float())
            tokens[index] = (drawn[0] if isinstance(drawn, tuple) else drawn).to(tokens.dtype)
        ended, keep = [], []
        for j, (row, token) in enumerate(zip(self.rows, tokens.tolist())):
            if token in self.stops:
                row.finished = True
                ended.append(row)
                continue
            row.token_ids.append(token)
            if len(row.token_ids) < row.budget:
                keep.append(j)
            else:
                ended.append(row)
        if not keep:
            self._reset()
            return ended
        if len(keep) < len(self.rows):
            index = torch.tensor(keep, device=tokens.device)
            self.cache.batch_select_indices(index)
            self.mask, self.next_position, tokens = self.mask[index], self.next_position[index], tokens[index]
            self.rows = [self.rows[j] for j in keep]
            self._trim()
        self.mask = torch.cat([self.mask, self.mask.new_ones(len(self.rows), 1)], dim=-1)
        self.logits = next_logits(self.model, tokens, self.mask, self.next_position, self.cache)
        self.next_position = self.next_position + 1
        return ended

    def abandon(self) -> list[Row]:
        """Every live row, taken out (after a failure: their callers get the error)."""
        rows = self.rows
        self._reset()
        return rows

    def _reset(self) -> None:
        self.rows, self.cache, self.mask, self.next_position, self.logits = [], None, None, None, None

    def _trim(self) -> None:
        """Cut the columns every live row masks (padding left behind by rows that left)."""
        first = int(self.mask.any(dim=0).nonzero()[0])
        if first > 0:
            self.mask = self.mask[:, first:]
            for layer in self.cache.layers:
                layer.keys, layer.values = layer.keys[..., first:, :], layer.values[..., first:, :]


def _pad_left(cache, columns: int) -> None:
    """``columns`` zero positions before every row of a ``DynamicCache`` (masked by the caller)."""
    for layer in cache.layers:
        layer.keys = F.pad(layer.keys, (0, 0, columns, 0))
        layer.values = F.pad(layer.values, (0, 0, columns, 0))
