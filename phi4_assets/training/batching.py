"""Length-bucketed batches for DPO: pairs of similar length share a batch, the batches come in a
fresh random order every epoch.

TRL's preference collator pads a batch's chosen and rejected sequences to its longest one, and
TRL 1.16 has padding-free DPO disabled. On one small run's stage-2 pairs (47 pairs, 82 tokens on
average, from a 5-token answer to a 320-token response; counted once from that run's warehouse)
random batches of 4 were about 44% padding, batches cut from the pairs sorted by length 18%; on the
mixed lengths of ``bench/train_throughput.py --data mixture`` buckets trained 1.56x the tokens/s
of random batches (BENCHMARKS.md). transformers' own
``group_by_length`` sorts within mega-batches of ``len // (4 x batch)`` batches, which at a few
dozen pairs is one or two batches: no grouping.

``LengthBucketSampler`` each epoch: a random permutation (seeded by ``seed + epoch``), sorted by
length (a stable sort: pairs of equal length stay in random order), cut into batches of
``batch_size``, and the batches shuffled. Every pair is seen once per epoch, as with a random
sampler; what changes is which pairs share a batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class LengthBucketSampler(Sampler[int]):
    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int = 0):
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch``, in the order they are drawn."""
        generator = torch.Generator().manual_seed(self.seed + epoch)
        permuted = torch.randperm(len(self.lengths), generator=generator).tolist()
        ordered = sorted(permuted, key=lambda i: self.lengths[i])
        batches = [ordered[i:i + self.batch_size] for i in range(0, len(ordered), self.batch_size)]
        return [batches[j] for j in torch.randperm(len(batches), generator=generator).tolist()]

    def __iter__(self) -> Iterator[int]:
        epoch = self.epoch
        self.epoch += 1  # the next epoch, where no one calls set_epoch
        for batch in self.batches(epoch):
            yield from batch

    def __len__(self) -> int:
        return len(self.lengths)


def pair_length(row: dict) -> int:
    """What a tokenized pair occupies in a padded batch: its prompt and its longer side."""
    return len(row["prompt_ids"]) + max(len(row["chosen_ids"]), len(row["rejected_ids"]))
