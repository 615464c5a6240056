import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from phi4_assets.config.settings import Paths  # noqa: E402

# One tokenizer conversion (GGUF -> tokenizer files, ~8 s) for the whole session.
_SESSION_CACHE = Path(os.environ.get("PHI4_TEST_CACHE", Path(__file__).resolve().parents[1] / "data" / "cache"))


@pytest.fixture
def state(tmp_path, monkeypatch) -> Paths:
    """Fresh generated-state locations for one test; shipped data stays where it is."""
    monkeypatch.setenv("PHI4_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("PHI4_CACHE_DIR", str(_SESSION_CACHE))
    monkeypatch.setenv("PHI4_PROFILE", "tiny")
    monkeypatch.delenv("PHI4_CONFIG", raising=False)
    monkeypatch.delenv("PHI4_TEACHER_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("PHI4_BASE_MODEL", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)  # `make test` exports one for the UI; tests use their own
    return Paths.from_env()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A random tiny Llama with the real tokenizer, saved once for the session."""
    from phi4_assets.models.base import save_tiny

    out = tmp_path_factory.mktemp("tiny-model")
    save_tiny(out, _SESSION_CACHE)
    return out


@pytest.fixture(scope="session")
def stopping_policy(tiny_model_dir):
    """(model, tokenizer): the tiny model in float32 with its own random output layer and a loud
    end-of-turn row, so that greedy continuations depend on the whole context and some rows end
    their turn early while others run to the limit (the tied tiny model repeats its last token and
    never ends its turn). For the decode loops' tests; do not modify it."""
    import copy

    import torch

    from phi4_assets.models.generation import load_policy

    model, tokenizer = load_policy(str(tiny_model_dir), dtype="float32")
    model = copy.deepcopy(model)
    head = torch.randn(model.get_output_embeddings().weight.shape, generator=torch.Generator().manual_seed(0)) * 0.02
    head[tokenizer.eos_token_id] *= 8
    model.get_output_embeddings().weight = torch.nn.Parameter(head)
    return model, tokenizer


@pytest.fixture
def stub_teacher(state, monkeypatch):
    """The scripted teacher (tests/scripted.py) on loopback, as the endpoint."""
    from scripted import scripted_endpoint, scripted_teacher

    with scripted_endpoint(scripted_teacher, monkeypatch) as stub:
        yield stub
