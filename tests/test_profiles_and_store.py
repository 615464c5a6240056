import pytest

from phi4_assets.models.store import is_complete, staged_model_dir
from phi4_assets.config.profiles import load_profile


def test_profiles_and_overrides(tmp_path, monkeypatch):
    monkeypatch.delenv("PHI4_PROFILE", raising=False)
    monkeypatch.delenv("PHI4_CONFIG", raising=False)
    monkeypatch.delenv("PHI4_TEACHER_BASE_URL", raising=False)
    assert load_profile().name == "small"
    assert load_profile("tiny").source_limit == 12
    config = tmp_path / "phi4.toml"
    config.write_text('[profile]\nteacher_base_url = "http://127.0.0.1:9/v1"\nteacher_model = "gpt-4o"\n'
                      'base_model = "/models/phi-4-base"\n')
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
    from phi4_assets.config.profiles import load_profile

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


def test_a_bad_profile_fails_when_loaded_naming_each_field(tmp_path, monkeypatch):
    from phi4_assets.config.profiles import load_profile

    monkeypatch.delenv("PHI4_CONFIG", raising=False)
    monkeypatch.delenv("PHI4_TEACHER_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    config = tmp_path / "phi4.toml"
    config.write_text('[profile]\nteacher_max_concurrency = "lots"\nshard_size = 0\npts_window = [0.2, 1.5]\n'
                      '[profile.dpo_train]\nlearnin_rate = 1e-5\nbeta = "x"\n')
    with pytest.raises(ValueError) as e:
        load_profile("small", config)
    message = str(e.value)
    assert message.startswith(f"profile small ({config}) is not valid:")
    for expected in ("teacher_max_concurrency: Input should be a valid integer (got 'lots')",
                     "shard_size: should be >= 1 (got 0)", "pts_window.1: should be in [0, 1] (got 1.5)",
                     "dpo_train.learnin_rate: neither a training setting of the project nor a field of TRL's "
                     "DPOConfig; did you mean learning_rate?", "dpo_train.beta: Input should be a valid number"):
        assert expected in message
    config.write_text('[profile]\npts_window = [0.3, 0.7]\n')
    assert tuple(load_profile("small", config).pts_window) == (0.3, 0.7)


def test_any_field_of_the_stages_trl_config_passes_through_to_trl(tmp_path, monkeypatch):
    from trl import DPOConfig, SFTConfig

    from phi4_assets.config.profiles import load_profile
    from phi4_assets.defs.training import settings_from

    monkeypatch.delenv("PHI4_TEACHER_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    config = tmp_path / "phi4.toml"
    config.write_text('[profile.sft_train]\noptim = "adafactor"\nlr_scheduler_type = "cosine"\n'
                      '[profile.dpo_train]\nweight_decay = 0.01\nloss_type = ["sigmoid"]\nlearning_rate = 1e-6\n')
    profile = load_profile("small", config)
    sft = settings_from(profile.sft_train, stage="sft_train")
    assert sft.trl == {"optim": "adafactor", "lr_scheduler_type": "cosine"}
    made = SFTConfig(output_dir=str(tmp_path / "sft"), **sft.trl_kwargs())
    assert made.optim == "adafactor" and made.lr_scheduler_type == "cosine"
    dpo = settings_from(profile.dpo_train, stage="dpo_train")
    made = DPOConfig(output_dir=str(tmp_path / "dpo"), **dpo.trl_kwargs())
    assert made.weight_decay == 0.01 and made.learning_rate == 1e-6 and dpo.learning_rate == 1e-6
    assert dpo.as_dict()["trl"] == {"weight_decay": 0.01, "loss_type": ["sigmoid"]}  # in the model's version
    assert "trl" not in settings_from({"learning_rate": 1e-6}).as_dict()  # versions made before stay the same
    # A DPO-only field in the SFT table names the class it is not a field of.
    config.write_text('[profile.sft_train]\nlabel_smoothing = 0.1\n')
    with pytest.raises(ValueError, match="sft_train.label_smoothing: neither a training setting of the project "
                                         "nor a field of TRL's SFTConfig"):
        load_profile("small", config)
    with pytest.raises(ValueError, match="sft_train.optimm: .*did you mean optim"):
        settings_from({}, {"optimm": "adamw_torch"}, stage="sft_train")  # a launchpad override


def test_the_teacher_failure_share_is_a_share_or_none_and_reaches_the_resource(tmp_path, monkeypatch):
    from phi4_assets.config.profiles import PROFILES
    from phi4_assets.defs.resources import build_resources

    for var in ("PHI4_CONFIG", "PHI4_TEACHER_BASE_URL", "OPENAI_BASE_URL", "PHI4_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    assert (PROFILES["tiny"].teacher_max_failure_share, PROFILES["small"].teacher_max_failure_share,
            PROFILES["full"].teacher_max_failure_share) == (None, None, 0.2)
    config = tmp_path / "phi4.toml"
    config.write_text("[profile]\nteacher_max_failure_share = 1.5\n")
    with pytest.raises(ValueError, match=r"teacher_max_failure_share: should be in \[0, 1\] \(got 1.5\)"):
        load_profile("small", config)
    config.write_text("[profile]\nteacher_max_failure_share = 0.3\n")
    monkeypatch.setenv("PHI4_CONFIG", str(config))
    monkeypatch.setenv("PHI4_STATE_DIR", str(tmp_path / "state"))
    assert build_resources("small")["teacher"].max_failure_share == 0.3
    monkeypatch.delenv("PHI4_CONFIG")
    assert build_resources("small")["teacher"].max_failure_share is None


def test_full_refuses_the_embedded_teacher_unless_told(tmp_path, monkeypatch):
    from phi4_assets.config.profiles import load_profile

    for var in ("PHI4_CONFIG", "PHI4_TEACHER_BASE_URL", "OPENAI_BASE_URL", "PHI4_BASE_MODEL"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match=r"full profile needs a teacher endpoint .* and a base model"):
        load_profile("full")
    monkeypatch.setenv("PHI4_TEACHER_BASE_URL", "http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match=r"full profile needs a base model \(PHI4_BASE_MODEL\)"):
        load_profile("full")
    config = tmp_path / "phi4.toml"
    config.write_text("[profile]\nallow_embedded_teacher = true\n")
    monkeypatch.delenv("PHI4_TEACHER_BASE_URL")
    assert load_profile("full", config).allow_embedded_teacher


def test_state_follows_the_project_the_command_runs_in(tmp_path, monkeypatch):
    """A second clone run from its own directory uses its own data/, not the first clone's (where
    the package was installed from); outside any clone, the installed checkout."""
    from phi4_assets.config.settings import REPO_ROOT, Paths, project_root

    for var in ("PHI4_DATA_DIR", "PHI4_STATE_DIR", "PHI4_WAREHOUSE", "PHI4_MODELS_DIR"):
        monkeypatch.delenv(var, raising=False)
    clone = tmp_path / "second-clone"
    (clone / "phi4_assets").mkdir(parents=True)
    (clone / "pyproject.toml").write_text('[project]\nname = "phi4-posttrain"\nversion = "0.1.0"\n')
    monkeypatch.chdir(clone / "phi4_assets")
    paths = Paths.from_env()
    assert project_root() == clone.resolve()
    assert paths.data_dir == clone.resolve() / "data" and paths.warehouse == clone.resolve() / "data" / "warehouse.duckdb"
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    assert project_root(other) == REPO_ROOT


def test_a_warehouse_uri_is_not_turned_into_a_local_path(monkeypatch, tmp_path):
    from phi4_assets.config.settings import Paths

    monkeypatch.setenv("PHI4_WAREHOUSE", "md:phi4_runs")
    monkeypatch.setenv("PHI4_MODELS_DIR", "relative/models")
    monkeypatch.chdir(tmp_path)
    paths = Paths.from_env()
    assert str(paths.warehouse) == "md:phi4_runs"
    assert paths.models_dir == tmp_path.resolve() / "relative" / "models"  # a local path is still resolved
