"""The training engine: exact short pairs through TRL's data path, resume, and the SFT/DPO assets."""

import math

import dagster as dg
import pandas as pd
import pytest
from transformers import AutoTokenizer, TrainerCallback

from phi4_assets.models.store import is_complete, staged_model_dir
from phi4_assets.training.common import TrainSettings, last_checkpoint
from phi4_assets.training.dpo import build_dpo_trainer
from phi4_assets.training.sft import train_sft
from scripted import ALL, run_all, table

TINY = dict(max_steps=2, per_device_train_batch_size=2, save_steps=1, max_length=128)


def test_single_token_pairs_train_exactly_that_token(tiny_model_dir, tmp_path):
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    paris = tok(" Paris", add_special_tokens=False)["input_ids"][0]
    lyon = tok(" Lyon", add_special_tokens=False)["input_ids"][0]
    pairs = [{"prompt": "The capital of France is", "chosen": " Paris", "rejected": " Lyon",
              "chosen_token_ids": [paris], "rejected_token_ids": [lyon]},
             {"prompt": "Say hello.", "chosen": "Hello!", "rejected": "No.",
              "chosen_token_ids": None, "rejected_token_ids": None}]
    trainer = build_dpo_trainer(str(tiny_model_dir), pairs, tmp_path / "work",
                                TrainSettings(**TINY, precompute_ref_log_probs=False))
    batch = next(iter(trainer.get_train_dataloader()))
    ids, mask = batch["input_ids"], batch["completion_mask"]
    n = len(pairs)
    completions = [ids[i][mask[i].bool()].tolist() for i in range(2 * n)]
    # The single-token pair: exactly the token, no end-of-turn or EOS appended.
    assert completions[0] == [paris] and completions[n] == [lyon]
    # A full response closes its turn with the end-of-turn token.
    assert completions[1][-1] == tok.eos_token_id and completions[n + 1][-1] == tok.eos_token_id
    assert tok.decode(completions[1][:-1]) == "Hello!"


class CrashAfter(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= self.step:
            raise RuntimeError(f"killed after step {state.global_step}")


def test_padding_free_sft_learns_exactly_what_padded_sft_learns(tiny_model_dir, tmp_path):
    """``padding_free`` (a batch's sequences end to end in one row) changes the work, not the math:
    in fp32 the same steps give the same losses and the same token counts as padded batches, with
    ``max_length`` cutting the same long row (a mask that let packed sequences see each other, or a
    limit not applied, would change the losses)."""
    from phi4_assets.training.sft import truncate_prepared

    rows = [{"prompt": f"Question {i}?", "completion": " ".join(["word"] * (3 + 9 * i))} for i in range(4)]
    base = dict(max_steps=2, per_device_train_batch_size=2, save_steps=100, max_length=36, precision="fp32")
    runs = {name: train_sft(str(tiny_model_dir), rows, tmp_path / name, tmp_path / f"work-{name}",
                            TrainSettings(**{**base, **extra}))
            for name, extra in (("padded", {}), ("free", {"trl": {"padding_free": True}}),
                                ("uncut", {"max_length": 512, "trl": {"padding_free": True}}))}
    losses = {name: [h["loss"] for h in run["history"] if "loss" in h] for name, run in runs.items()}
    assert len(losses["padded"]) == 2 and losses["free"] == pytest.approx(losses["padded"], rel=1e-4)
    padded, free = runs["padded"]["metrics"], runs["free"]["metrics"]
    assert free["tokens_per_epoch"] == padded["tokens_per_epoch"] and free["tokens"] == padded["tokens"]
    assert padded["tokens_per_epoch"] < runs["uncut"]["metrics"]["tokens_per_epoch"]  # the long rows were cut

    from datasets import Dataset
    prepared = Dataset.from_list([{"input_ids": [1, 2, 3, 4], "labels": [-100, -100, -100, 4]},
                                  {"input_ids": [5, 6], "labels": [-100, 6]}])
    cut = truncate_prepared(prepared, 3)  # the first row keeps no label: dropped; the second is short
    assert cut["input_ids"] == [[5, 6]] and cut["labels"] == [[-100, 6]]
    assert truncate_prepared(prepared, 4) is prepared


def test_precomputed_reference_log_probs_train_exactly_what_per_step_ones_train(tiny_model_dir, tmp_path):
    """``precompute_ref_log_probs``: the reference model's log-probabilities computed once before
    training instead of at every step of every epoch. The reference is the frozen starting model
    either way, so over several epochs the losses and reward margins are the same in fp32 (a
    precomputed value stored against the wrong pair, or recomputed from the moving policy, would
    change them from the second step on)."""
    from phi4_assets.training.dpo import train_dpo

    pairs = [{"prompt": f"Question {i}?", "chosen": " ".join(["yes"] * (1 + 2 * i)), "rejected": f"no {i}",
              "chosen_token_ids": None, "rejected_token_ids": None} for i in range(4)]
    base = dict(num_train_epochs=2, per_device_train_batch_size=2, save_steps=100, max_length=64,
                precision="fp32", learning_rate=1e-3)
    runs = {flag: train_dpo(str(tiny_model_dir), pairs, tmp_path / str(flag), tmp_path / f"work-{flag}",
                            TrainSettings(**base, precompute_ref_log_probs=flag)) for flag in (False, True)}
    keys = ("loss", "rewards/margins", "rewards/chosen")
    logged = {flag: [h[k] for h in run["history"] if "loss" in h for k in keys] for flag, run in runs.items()}
    assert len(logged[False]) == 4 * len(keys)  # 2 epochs x 2 steps, every step logged
    assert logged[True] == pytest.approx(logged[False], rel=1e-4, abs=1e-6)
    assert logged[False][-2] != pytest.approx(logged[False][1], abs=1e-6)  # the margin moved: the policy learned
    assert runs[True]["metrics"]["precomputed_ref"] and not runs[False]["metrics"]["precomputed_ref"]


def test_a_killed_training_run_resumes_from_its_last_checkpoint(tiny_model_dir, tmp_path):
    rows = [{"prompt": f"Say {w}.", "completion": f"{w}!"} for w in ("hi", "yes", "no", "ok", "go", "up")]
    settings = TrainSettings(**{**TINY, "max_steps": 3})
    work = tmp_path / "work"
    with pytest.raises(RuntimeError, match="killed after step 2"):
        with staged_model_dir(tmp_path / "models", "sft_model", "v1") as out:
            train_sft(str(tiny_model_dir), rows, out, work, settings, callbacks=[CrashAfter(2)])
    assert not (tmp_path / "models" / "sft_model" / "v1").exists()  # no half-written model
    assert last_checkpoint(work).endswith("checkpoint-2")

    with staged_model_dir(tmp_path / "models", "sft_model", "v1") as out:
        result = train_sft(str(tiny_model_dir), rows, out, work, settings)
    assert result["metrics"]["resumed_from"].endswith("checkpoint-2")
    assert result["metrics"]["steps"] == 3
    assert [h["step"] for h in result["history"] if "loss" in h] == [3]  # only the step left to do ran
    assert is_complete(tmp_path / "models" / "sft_model" / "v1")


@pytest.mark.parametrize("launcher", ["inprocess", "accelerate"])
def test_sft_and_a_dpo_stage_materialize_on_tiny(state, stub_teacher, launcher, tmp_path, monkeypatch):
    """In the asset's process, and launched: ``accelerate launch`` on 2 CPU processes (DDP over
    gloo) through Dagster Pipes, with the same metadata."""
    if launcher == "accelerate":
        config = tmp_path / "phi4.toml"
        config.write_text('[profile]\ntrain_launcher = "accelerate"\ntrain_processes = 2\n')
        monkeypatch.setenv("PHI4_CONFIG", str(config))
    from phi4_assets.defs import sft, sources
    from phi4_assets.defs.resources import build_resources
    from phi4_assets.defs.training import TRAIN, dpo_stage, settings_from
    from phi4_assets.models.ref import ModelRef
    from phi4_assets.defs.resources import ModelStoreResource, ProjectResource

    @dg.asset(**TRAIN)
    def tiny_dpo_model(context: dg.AssetExecutionContext, project: ProjectResource, model_store: ModelStoreResource,
                       sft_model: pd.DataFrame,
                       hallucination_dpo_pairs: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        return dpo_stage(context, model_store, "tiny_dpo_model", ModelRef.from_frame(sft_model),
                         hallucination_dpo_pairs, settings_from(project.settings().dpo_train), project.settings())

    instance = dg.DagsterInstance.ephemeral()
    run_all(instance)
    assets = [*ALL, sources.chat_prompts, sources.safety_prompts, sft.sft_dataset, sft.sft_model, tiny_dpo_model]
    result = dg.materialize(assets, selection=[sources.chat_prompts.key, sources.safety_prompts.key,
                                               sft.sft_dataset.key, sft.sft_model.key, tiny_dpo_model.key],
                            resources=build_resources(), instance=instance)
    data = result.output_for_node("sft_dataset")
    assert set(data["source"]) == {"chat", "hallucination", "safety"}
    from phi4_assets.core.refusal import is_refusal

    assert all(is_refusal(c) for c in data[data["kind"] == "harmful_refusal"]["completion"])
    # The tiny policy is right on one question (France) and wrong on eleven: declines are capped at half
    # the hallucination rows (1 answer, 1 decline), that pool is now the scarcest and sets the size...
    hallucination = data[data["source"] == "hallucination"]
    assert sorted(hallucination["kind"].map(lambda k: k == "answer")) == [False, True]
    assert len(data[data["source"] == "chat"]) == round(2 / 0.4 * 0.45)  # ...and the rest follow the shares
    meta = {e.event_specific_data.materialization.asset_key.path[-1]: e.event_specific_data.materialization.metadata
            for e in result.get_asset_materialization_events()}
    assert meta["sft_dataset"]["declines_capped"].value == 11
    for name in ("sft_model", "tiny_dpo_model"):
        m = {k: v.value for k, v in meta[name].items()}
        assert m["steps"] == 2 and m["tokens"] > 0 and m["tokens_per_s"] > 0 and m["wall_s"] > 0, (name, m)
        assert m["processes"] == (2 if launcher == "accelerate" else 1), (name, m)
        assert math.isfinite(m["final_loss"]), (name, m)
        assert "data:image/png;base64," in m["loss_curve"], name
        assert m["path"] == ModelRef.from_frame(result.output_for_node(name)).path, name
    # Progress reaches the run's log from the trainer (in the asset's process, or the main training process via Pipes).
    progress = [e.user_message for e in instance.all_logs(result.run_id) if e.user_message.startswith("step 2/2")]
    assert len(progress) >= 2, progress  # one per model
    assert math.isfinite(meta["tiny_dpo_model"]["reward_margin"].value)
    assert 0.0 <= meta["tiny_dpo_model"]["reward_accuracy"].value <= 1.0
    assert meta["sft_model"]["examples"].value == len(data)  # SFT trained on every row of sft_dataset
    dpo = ModelRef.from_frame(result.output_for_node("tiny_dpo_model"))
    assert dpo.base_model == ModelRef.from_frame(result.output_for_node("sft_model")).path

    again = dg.materialize(assets, selection=[sft.sft_model.key], resources=build_resources(), instance=instance)
    reused = again.get_asset_materialization_events()[0].event_specific_data.materialization.metadata["reused"]
    assert reused.value is True  # same parent, data and settings: no retraining
    # The DPO stage trained on every hallucination pair the group wrote.
    assert meta["tiny_dpo_model"]["pairs"].value == len(table(state, "hallucination_dpo_pairs")) > 0


def test_a_launched_model_has_a_version_of_its_own():
    """The global batch of a launched job is the per-device batch times its processes: a model
    trained on 2 processes is not the in-process one (whose versions stay as they were)."""
    from phi4_assets.training.launch import launch_identity

    assert launch_identity("inprocess", 2, None) is None
    two, four = launch_identity("accelerate", 2, None), launch_identity("accelerate", 4, None)
    assert two != four and two["processes"] == 2 and two["accelerate_config"] is None
