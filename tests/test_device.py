"""Where the policy runs: the profile's ``device``, resolved once, reaches every in-process sampler."""

import json

import pytest
import torch

from phi4_assets.core import hardware
from phi4_assets.core.hardware import preferred_dtype_name, resolve_device
from phi4_assets.models.generation import chat_prompt, load_policy, sample_responses


def test_auto_takes_a_gpu_where_torch_sees_one_and_cuda_without_one_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu" and resolve_device("cpu") == "cpu"
    with pytest.raises(RuntimeError, match='device = "cuda" but torch sees no GPU'):
        resolve_device("cuda")
    with pytest.raises(ValueError, match="auto, cpu, cuda"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda" and resolve_device("cuda") == "cuda"
    assert resolve_device("cpu") == "cpu"  # a GPU box can still be told to stay on the CPU


def test_the_dtype_follows_the_device(monkeypatch):
    monkeypatch.setattr(hardware, "cpu_has_fast_bf16", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert preferred_dtype_name("cuda") == "bfloat16"
    assert preferred_dtype_name("cpu") == "float32"  # a GPU in the box does not make CPU bf16 fast
    assert preferred_dtype_name() == "bfloat16"
    monkeypatch.setattr(hardware, "cpu_has_fast_bf16", lambda: True)
    assert preferred_dtype_name("cpu") == "bfloat16"


def test_a_profile_names_a_bad_device_when_loaded(tmp_path, monkeypatch):
    from phi4_assets.config.profiles import load_profile

    monkeypatch.delenv("PHI4_CONFIG", raising=False)
    config = tmp_path / "phi4.toml"
    config.write_text('[profile]\ndevice = "gpu"\n')
    with pytest.raises(ValueError, match=r"device: should be one of auto, cpu, cuda \(got 'gpu'\)"):
        load_profile("small", config)
    config.write_text('[profile]\ndevice = "cpu"\n')
    assert load_profile("small", config).device == "cpu"


def test_the_policy_and_its_inputs_go_to_the_device(tiny_model_dir):
    model, tokenizer = load_policy(str(tiny_model_dir), device="cpu")
    assert model.device.type == "cpu" and model.dtype == getattr(torch, preferred_dtype_name("cpu"))
    assert not model.training and tokenizer.padding_side == "left"
    samples = sample_responses(model, tokenizer, [chat_prompt(tokenizer, "Hi")], 2, max_new_tokens=3, seed=0)
    assert len(samples) == 1 and len(samples[0]) == 2
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no GPU"):
            load_policy(str(tiny_model_dir), device="cuda")


def test_phi4_info_says_where_the_policy_runs(capsys):
    from phi4_assets.cli.main import main

    assert main(["info", "--profile", "tiny"]) == 0
    runtime = json.loads(capsys.readouterr().out)["runtime"]
    assert runtime["device"] == resolve_device("auto")
    assert runtime["dtype"] == preferred_dtype_name(runtime["device"])
    assert runtime["torch"] == torch.__version__
    assert runtime["policy_backend"] == "transformers"


def test_the_gpu_smoke_bench_runs_its_steps_where_the_suite_runs(tiny_model_dir):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "bench" / "gpu_smoke.py"
    done = subprocess.run([sys.executable, str(script), "--model", str(tiny_model_dir), "--problems", "1",
                           "--rollouts", "2", "--tokens", "6"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert ("GPU: " in out) if torch.cuda.is_available() else ("no GPU" in out)
    table = [line for line in out.splitlines() if line.startswith("| ") and "seconds" not in line]
    assert [line.split(" | ")[0] for line in table] == ["| load the policy", "| sample 4 x 4 chat responses",
                                                        "| PTS on 1 math problems", "| one DPO step (4 pairs)"]
