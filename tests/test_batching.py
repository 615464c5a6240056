"""Length-bucketed DPO batches (``training.batching``): exact batch membership, a fresh order each
epoch, and TRL's dataloader drawing them."""

from __future__ import annotations

import pytest

from phi4_assets.training.batching import LengthBucketSampler, pair_length
from phi4_assets.training.common import TrainSettings
from phi4_assets.training.dpo import build_dpo_trainer

LENGTHS = [30, 5, 17, 5, 90, 12, 64, 8, 41]  # sorted: 1 3 7 5 2 0 8 6 4 (the two 5s in random order)


def test_each_epoch_draws_every_pair_once_in_batches_of_neighbours_by_length():
    sampler = LengthBucketSampler(LENGTHS, batch_size=2, seed=7)
    seen_orders = set()
    for epoch in range(4):
        batches = sampler.batches(epoch)
        assert sorted(i for b in batches for i in b) == list(range(len(LENGTHS)))
        # The batches are the sorted order cut in twos: {1, 3}, {7, 5}, {2, 0}, {8, 6}, {4}.
        assert sorted(sorted(LENGTHS[i] for i in b) for b in batches) == [[5, 5], [8, 12], [17, 30], [41, 64], [90]]
        seen_orders.add(tuple(tuple(b) for b in batches))
        assert list(sampler) == [i for b in batches for i in b] and sampler.epoch == epoch + 1
    assert len(seen_orders) > 1  # the batches come in a different order from epoch to epoch
    again = LengthBucketSampler(LENGTHS, batch_size=2, seed=7)
    again.set_epoch(2)
    assert list(again) == [i for b in sampler.batches(2) for i in b]  # seed + epoch reproduce
    assert LengthBucketSampler(LENGTHS, 2, seed=8).batches(0) != sampler.batches(0)
    assert len(sampler) == len(LENGTHS)
    with pytest.raises(ValueError, match="batch_size"):
        LengthBucketSampler(LENGTHS, 0)


def test_a_pair_occupies_its_prompt_and_its_longer_side():
    assert pair_length({"prompt_ids": [1, 2, 3], "chosen_ids": [4], "rejected_ids": [5, 6, 7, 8]}) == 7


def test_the_dpo_trainer_draws_length_bucketed_batches(tiny_model_dir, tmp_path):
    words = (1, 40, 2, 39, 3, 38)
    pairs = [{"prompt": "Say it.", "chosen": " ".join(["yes"] * n), "rejected": "no", "chosen_token_ids": None,
              "rejected_token_ids": None} for n in words]
    settings = TrainSettings(max_steps=2, per_device_train_batch_size=3, save_steps=100, max_length=128,
                             length_buckets=True)
    trainer = build_dpo_trainer(str(tiny_model_dir), pairs, tmp_path / "work", settings)
    # The chosen sides (the first half of each batch's rows): the three short answers together and
    # the three long ones together, never a short one padded to a long one.
    chosen = sorted(sorted(int(n) for n in batch["completion_mask"][:3].sum(-1))
                    for batch in trainer.get_train_dataloader())
    short = [len(trainer.train_dataset[i]["chosen_ids"]) for i in (0, 2, 4)]
    long = [len(trainer.train_dataset[i]["chosen_ids"]) for i in (5, 3, 1)]
    assert chosen == [sorted(short), sorted(long)]
    unbucketed = build_dpo_trainer(str(tiny_model_dir), pairs, tmp_path / "work2",
                                   TrainSettings(**{**settings.as_dict(), "length_buckets": False}))
    assert unbucketed.length_buckets is None
    assert "length_buckets" not in TrainSettings().as_dict()  # unset: the versions of earlier models stay
