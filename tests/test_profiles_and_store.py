import pytest

from phi4_assets.models.store import is_complete, staged_model_dir
from phi4_assets.profiles import load_profile


def test_profiles_and_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv("PHI4_PROFILE", raising=False)
    monkeypatch.delenv("PHI4_CONFIG", raising=False)
    monkeypatch.delenv("PHI4_TEACHER_BASE_URL", raising=False)
    assert load_profile().name == "small"
    assert load_profile("tiny").source_limit == 12
    config = tmp_path / "phi4.toml"
    config.write_text('[profile]\nteacher_base_url = "http://127.0.0.1:9/v1"\nteacher_model = "gpt-4o"\n')
    full = load_profile("full", config)
    assert (full.teacher_base_url, full.teacher_model) == ("http://127.0.0.1:9/v1", "gpt-4o")
    monkeypatch.setenv("PHI4_TEACHER_MODEL", "gpt-4o-mini")
    assert load_profile("full", config).teacher_model == "gpt-4o-mini"
    config.write_text("[profile]\nteacher_modle = 'x'\n")
    with pytest.raises(ValueError, match=r"phi4.toml: \[profile\] has unknown field\(s\) teacher_modle"):
        load_profile("full", config)
    with pytest.raises(ValueError, match="unknown profile 'huge'"):
        load_profile("huge")


def test_model_dir_appears_only_when_complete(tmp_path):
    with pytest.raises(RuntimeError):
        with staged_model_dir(tmp_path, "sft_model", "v1") as tmp:
            (tmp / "model.safetensors").write_text("partial")
            raise RuntimeError("training died")
    assert not (tmp_path / "sft_model" / "v1").exists()
    assert list((tmp_path / "sft_model").iterdir()) == []  # no temporary leftovers

    with staged_model_dir(tmp_path, "sft_model", "v1") as tmp:
        (tmp / "model.safetensors").write_text("weights")
    final = tmp_path / "sft_model" / "v1"
    assert is_complete(final) and (final / "model.safetensors").read_text() == "weights"
    assert [p.name for p in (tmp_path / "sft_model").iterdir()] == ["v1"]


def test_openai_base_url_is_honoured_and_phi4_teacher_base_url_wins(monkeypatch, caplog):
    from phi4_assets.profiles import load_profile

    monkeypatch.delenv("PHI4_TEACHER_BASE_URL", raising=False)
    monkeypatch.delenv("PHI4_CONFIG", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://vllm-box:8000/v1")
    assert load_profile("small").teacher_base_url == "http://vllm-box:8000/v1"
    monkeypatch.setenv("PHI4_TEACHER_BASE_URL", "http://other:9000/v1")
    with caplog.at_level("WARNING"):
        assert load_profile("small").teacher_base_url == "http://other:9000/v1"
    assert "PHI4_TEACHER_BASE_URL (http://other:9000/v1) wins over OPENAI_BASE_URL" in caplog.text
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("PHI4_TEACHER_BASE_URL")
    assert load_profile("small").teacher_base_url is None
