"""The multi-machine deployment files in ``deploy/``, checked with Dagster's own config schemas.

Nothing here starts Docker, Kubernetes or Postgres (the build machine has none of them): the
instance files go through ``dagster_instance_config`` (what Dagster runs when it loads
``$DAGSTER_HOME/dagster.yaml``), the run launchers, run coordinator and storage through their own
``config_type()``, and the files that must agree on a name (compose services, network, volume,
workspace host) are compared. The tests that need an integration library skip without the
``deploy`` extra.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from dagster._config import validate_config
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import dagster_instance_config
from dagster._serdes.config_class import ConfigurableClassData

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "deploy" / "docker"
K8S = ROOT / "deploy" / "k8s"
INSTANCE_FILES = {
    "docker": (DOCKER, "dagster.yaml"),
    "k8s": (K8S, "dagster-instance-k8s.yaml"),
}
STATE_DIR = "/opt/phi4/state"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _instance(kind: str) -> dict:
    """The instance file as Dagster loads it: schema-checked, defaults filled in."""
    base_dir, filename = INSTANCE_FILES[kind]
    config, custom_instance_class = dagster_instance_config(str(base_dir), filename)
    assert custom_instance_class is None
    return config


def _class_data(section: dict) -> ConfigurableClassData:
    return ConfigurableClassData(section["module"], section["class"], yaml.safe_dump(section.get("config") or {}))


def _compose() -> dict:
    return _load(DOCKER / "docker-compose.yaml")


def _env_vars(entries: list[str]) -> dict[str, str | None]:
    """A launcher's env_vars: KEY=VALUE pairs, and bare names (copied from the launching process)."""
    return dict(entry.split("=", 1) if "=" in entry else (entry, None) for entry in entries)


# -- instance files: Dagster's instance schema ---------------------------------------------------

@pytest.mark.parametrize("kind", sorted(INSTANCE_FILES))
def test_instance_file_passes_dagster_instance_schema(kind):
    raw = _load(INSTANCE_FILES[kind][0] / INSTANCE_FILES[kind][1])
    assert "run_launcher" in raw and "storage" in raw and "concurrency" in raw
    config = _instance(kind)
    assert set(config["storage"]) == {"postgres"}
    db = config["storage"]["postgres"]["postgres_db"]
    for key in ("username", "password", "hostname", "db_name", "port"):
        assert set(db[key]) == {"env"}, f"{kind}: postgres {key} is not read from the environment"


@pytest.mark.parametrize("kind", sorted(INSTANCE_FILES))
def test_pools_and_run_limits_keep_the_project_semantics(kind):
    """One slot per pool (`duckdb`, `train`) as in the top-level dagster.yaml, the same run queue
    limit, one GPU run at a time, and slots of dead runs freed by run monitoring."""
    project = _load(ROOT / "dagster.yaml")
    config = _instance(kind)
    assert config["concurrency"]["pools"]["default_limit"] == project["concurrency"]["pools"]["default_limit"] == 1
    runs = config["concurrency"]["runs"]
    assert runs["max_concurrent_runs"] == project["concurrency"]["runs"]["max_concurrent_runs"]
    assert {"key": "phi4/resource", "value": "gpu", "limit": 1} in runs["tag_concurrency_limits"]
    monitoring = config["run_monitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["free_slots_after_run_end_seconds"] == project["run_monitoring"]["free_slots_after_run_end_seconds"]
    assert monitoring["max_resume_run_attempts"] == 0
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    _class_data(config["run_coordinator"]).rehydrate()


def test_misspelled_key_is_rejected(tmp_path):
    text = (DOCKER / "dagster.yaml").read_text()
    assert text.count("max_concurrent_runs:") == 1
    (tmp_path / "dagster.yaml").write_text(text.replace("max_concurrent_runs:", "max_concurrent_run:"))
    with pytest.raises(DagsterInvalidConfigError) as excinfo:
        dagster_instance_config(str(tmp_path), "dagster.yaml")
    assert "max_concurrent_run" in str(excinfo.value)
    assert 'Received unexpected config entry "max_concurrent_run"' in str(excinfo.value)


def test_run_coordinator_limits_conflict_with_pools(tmp_path):
    """Why the run limits sit under concurrency.runs: Dagster refuses them on the coordinator
    when concurrency.pools is set."""
    config = _load(DOCKER / "dagster.yaml")
    config["run_coordinator"]["config"] = {"max_concurrent_runs": config["concurrency"].pop("runs")["max_concurrent_runs"]}
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(DagsterInvalidConfigError, match="incompatible with the `concurrency > runs` config"):
        dagster_instance_config(str(tmp_path), "dagster.yaml")


def test_postgres_storage_matches_the_storage_class_schema():
    dagster_postgres = pytest.importorskip("dagster_postgres")
    for kind in INSTANCE_FILES:
        postgres = _load(INSTANCE_FILES[kind][0] / INSTANCE_FILES[kind][1])["storage"]["postgres"]
        result = validate_config(dagster_postgres.DagsterPostgresStorage.config_type(), postgres)
        assert result.success, (kind, [e.message for e in result.errors])


# -- run launchers: their own config schemas ----------------------------------------------------

def test_docker_run_launcher_config():
    dagster_docker = pytest.importorskip("dagster_docker")
    section = _load(DOCKER / "dagster.yaml")["run_launcher"]
    assert (section["module"], section["class"]) == ("dagster_docker", "DockerRunLauncher")
    launcher = _class_data(section).rehydrate()  # validates against DockerRunLauncher.config_type()
    assert isinstance(launcher, dagster_docker.DockerRunLauncher)
    assert launcher.supports_check_run_worker_health  # what run monitoring relies on
    assert _env_vars(launcher.env_vars)["PHI4_STATE_DIR"] == STATE_DIR


def test_docker_run_launcher_rejects_a_misspelled_key():
    pytest.importorskip("dagster_docker")
    section = _load(DOCKER / "dagster.yaml")["run_launcher"]
    section["config"]["netwrok"] = section["config"].pop("network")
    with pytest.raises(DagsterInvalidConfigError, match="netwrok"):
        _class_data(section).rehydrate()


def test_docker_container_kwargs_are_docker_py_arguments():
    pytest.importorskip("dagster_docker")
    from docker.models.containers import _create_container_args

    launcher = _class_data(_load(DOCKER / "dagster.yaml")["run_launcher"]).rehydrate()
    # The arguments DockerRunLauncher passes to containers.create(); unknown ones raise TypeError.
    args = _create_container_args(dict(image="phi4-posttrain:latest", command=["dagster"], detach=True,
                                       environment={}, network=launcher.networks[0], labels={},
                                       version="1.41", **launcher.container_kwargs))
    assert args["host_config"]["Binds"] == [f"phi4_state:{STATE_DIR}"]


def test_k8s_run_launcher_config():
    dagster_k8s = pytest.importorskip("dagster_k8s")
    from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict
    from kubernetes.client import V1Volume, V1VolumeMount

    section = _load(K8S / "dagster-instance-k8s.yaml")["run_launcher"]
    assert (section["module"], section["class"]) == ("dagster_k8s", "K8sRunLauncher")
    config = section["config"]
    # Not rehydrated: the constructor loads a kubeconfig, which needs a cluster.
    result = validate_config(dagster_k8s.K8sRunLauncher.config_type(), config)
    assert result.success, [e.message for e in result.errors]
    for key in ("job_namespace", "service_account_name", "instance_config_map", "postgres_password_secret",
                "dagster_home", "volume_mounts", "volumes", "env_vars"):
        assert config.get(key), key
    misspelled = dict(config, job_namespce=config["job_namespace"])
    assert not validate_config(dagster_k8s.K8sRunLauncher.config_type(), misspelled).success

    # The schema lets volumes through as free-form dicts: check them with the Kubernetes models.
    volumes = [k8s_model_from_dict(V1Volume, k8s_snake_case_dict(V1Volume, v)) for v in config["volumes"]]
    mounts = [k8s_model_from_dict(V1VolumeMount, k8s_snake_case_dict(V1VolumeMount, m)) for m in config["volume_mounts"]]
    assert {m.name for m in mounts} <= {v.name for v in volumes}
    assert any(m.mount_path == STATE_DIR for m in mounts)
    assert all(v.persistent_volume_claim is not None for v in volumes)
    assert _env_vars(config["env_vars"])["PHI4_STATE_DIR"] == STATE_DIR
    with pytest.raises(Exception, match="Unexpected keys"):
        k8s_model_from_dict(V1VolumeMount, k8s_snake_case_dict(V1VolumeMount, {"name": "x", "mountPth": "/x"}))


# -- docker compose, workspace, image -----------------------------------------------------------

def test_compose_services_and_the_names_the_launcher_uses():
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"postgres", "user_code", "webserver", "daemon"}
    assert services["postgres"]["image"] == "postgres:16"

    user_code = services["user_code"]
    assert user_code["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    assert (DOCKER / user_code["build"]["context"] / user_code["build"]["dockerfile"]).resolve() == DOCKER / "Dockerfile"
    assert user_code["command"] == ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-f", "definitions.py"]
    assert (ROOT / "definitions.py").is_file()
    assert user_code["environment"]["PHI4_STATE_DIR"] == STATE_DIR
    assert user_code["environment"]["DAGSTER_CURRENT_IMAGE"] == user_code["image"]
    for name in ("webserver", "daemon"):
        assert services[name]["image"] == user_code["image"], name
    assert services["webserver"]["command"][0] == "dagster-webserver"
    assert services["daemon"]["command"][:2] == ["dagster-daemon", "run"]

    launcher = _load(DOCKER / "dagster.yaml")["run_launcher"]["config"]
    network = launcher["network"]
    compose_network = next(key for key, value in compose["networks"].items() if value["name"] == network)
    for name, service in services.items():
        assert compose_network in service["networks"], name

    # The launcher mounts the compose volume by its fixed name, where user_code has it.
    (volume_spec,) = launcher["container_kwargs"]["volumes"]
    volume_name, mount_path = volume_spec.split(":")
    compose_volume = next(key for key, value in compose["volumes"].items() if value and value.get("name") == volume_name)
    assert f"{compose_volume}:{mount_path}" in user_code["volumes"]
    assert mount_path == STATE_DIR

    # Bare env_vars names are read from the daemon's environment when it launches a run.
    daemon_env = services["daemon"]["environment"]
    for key, value in _env_vars(launcher["env_vars"]).items():
        assert value is not None or key in daemon_env, key
    # The instance reads Postgres settings from the environment every service has.
    postgres_db = _load(DOCKER / "dagster.yaml")["storage"]["postgres"]["postgres_db"]
    for name in ("user_code", "webserver", "daemon"):
        for field in (f for f in postgres_db.values() if isinstance(f, dict)):  # scheme is a literal
            assert field["env"] in services[name]["environment"], (name, field["env"])
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_workspace_points_at_the_compose_code_server():
    from dagster._core.workspace.config_schema import ensure_workspace_config

    path = DOCKER / "workspace.yaml"
    workspace = ensure_workspace_config(_load(path), str(path))  # Dagster's workspace schema
    (entry,) = workspace["load_from"]
    server = entry["grpc_server"]
    assert server["location_name"] == "phi4_posttrain"
    services = _compose()["services"]
    assert server["host"] in services
    command = services[server["host"]]["command"]
    assert command[command.index("-p") + 1] == str(server["port"])
    assert "definitions.py" in command


def test_image_carries_the_instance_and_workspace_files():
    dockerfile = (DOCKER / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", dockerfile, re.M)
    assert "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in dockerfile
    assert 'pip install -e ".[deploy]"' in dockerfile
    home = re.search(r"DAGSTER_HOME=(\S+)", dockerfile).group(1)
    assert re.search(rf"^COPY deploy/docker/dagster\.yaml deploy/docker/workspace\.yaml {re.escape(home)}/$", dockerfile, re.M)
    webserver = _compose()["services"]["webserver"]["command"]
    assert webserver[webserver.index("-w") + 1] == f"{home}/workspace.yaml"
    for source in re.findall(r"^COPY (?!deploy/)(.+) \S+$", dockerfile, re.M):
        for item in source.split():
            assert (ROOT / item).exists(), item
    extras = _load_pyproject()["project"]["optional-dependencies"]["deploy"]
    assert sorted(e.split("==")[0] for e in extras) == ["dagster-docker", "dagster-k8s", "dagster-postgres"]


def _load_pyproject() -> dict:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())


# -- Helm values --------------------------------------------------------------------------------

def test_helm_values_share_state_with_run_pods():
    pytest.importorskip("dagster_k8s")
    from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict
    from kubernetes.client import V1Volume, V1VolumeMount

    values = _load(K8S / "values.yaml")
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-f", "definitions.py"]
    assert deployment["env"]["PHI4_STATE_DIR"] == STATE_DIR
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    k8s_launcher = launcher["config"]["k8sRunLauncher"]
    assert _env_vars(k8s_launcher["envVars"])["PHI4_STATE_DIR"] == STATE_DIR

    def models(model, entries):  # the chart passes these through as Kubernetes objects (camelCase)
        return [k8s_model_from_dict(model, k8s_snake_case_dict(model, e)) for e in entries]

    for holder in (deployment, k8s_launcher):
        volumes = models(V1Volume, holder["volumes"])
        mounts = models(V1VolumeMount, holder["volumeMounts"])
        assert [m.mount_path for m in mounts] == [STATE_DIR]
        assert {m.name for m in mounts} <= {v.name for v in volumes}
    assert deployment["volumes"] == k8s_launcher["volumes"]
    assert deployment["volumeMounts"] == k8s_launcher["volumeMounts"]
    claim = deployment["volumes"][0]["persistentVolumeClaim"]["claimName"]
    instance_volumes = _load(K8S / "dagster-instance-k8s.yaml")["run_launcher"]["config"]["volumes"]
    assert instance_volumes[0]["persistent_volume_claim"]["claim_name"] == claim


def test_helm_values_limits_match_the_instance_files():
    values = _load(K8S / "values.yaml")
    instance = _load(K8S / "dagster-instance-k8s.yaml")
    concurrency = values["concurrency"]
    assert concurrency["enabled"] is True
    assert concurrency["pools"]["defaultLimit"] == instance["concurrency"]["pools"]["default_limit"]
    assert concurrency["runs"]["maxConcurrentRuns"] == instance["concurrency"]["runs"]["max_concurrent_runs"]
    assert concurrency["runs"]["tagConcurrencyLimits"] == instance["concurrency"]["runs"]["tag_concurrency_limits"]
    # The chart refuses run limits in both places at once.
    queued = values.get("dagsterDaemon", {}).get("runCoordinator", {}).get("config", {}).get("queuedRunCoordinator", {})
    assert not {"maxConcurrentRuns", "tagConcurrencyLimits"} & set(queued)
    monitoring = values["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] is True
    assert monitoring["maxResumeRunAttempts"] == instance["run_monitoring"]["max_resume_run_attempts"]


_OP_TAGS = """
import json, definitions
graph = definitions.defs.resolve_asset_graph()
print(json.dumps({k.to_user_string(): dict(graph.get(k).assets_def.op.tags or {})
                  for k in graph.get_all_asset_keys() if graph.get(k).assets_def.is_executable}))
"""
POLICY_STEPS = {"sft_model", "dpo1_model", "dpo2_model", "dpo2_only_model", "policy_answer_samples", "pts_difficulty",
                "pivotal_tokens", "dpo1_mix_pairs", "dpo2_mix_pairs", "judge_candidates", "stage_evaluations"}


def _op_tags(env: dict[str, str]) -> dict[str, dict[str, str]]:
    import json
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _OP_TAGS], cwd=ROOT, capture_output=True, text=True, timeout=300,
                         env={**os.environ, **env}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_steps_that_run_the_policy_ask_kubernetes_for_a_gpu_when_the_deployment_says_so():
    pytest.importorskip("dagster_k8s")
    from dagster_k8s.job import get_user_defined_k8s_config

    tags = _op_tags({"PHI4_K8S_STEP_GPUS": "2", "PHI4_K8S_GPU_NODE_SELECTOR": "nvidia.com/gpu.present=true"})
    tagged = {name for name, t in tags.items() if "dagster-k8s/config" in t}
    assert tagged == POLICY_STEPS
    for name in tagged:  # what k8s_job_executor reads from a step's tags, through dagster-k8s's own schema
        config = get_user_defined_k8s_config(tags[name])
        assert config.container_config["resources"]["limits"] == {"nvidia.com/gpu": "2"}, name
        assert config.pod_spec_config["node_selector"] == {"nvidia.com/gpu.present": "true"}, name
    # Off by default: on a CPU-only cluster a GPU limit would leave the pods unschedulable.
    assert not any("dagster-k8s/config" in t for t in _op_tags({"PHI4_K8S_STEP_GPUS": ""}).values())


def test_a_bad_gpu_count_names_the_variable():
    from phi4_assets.defs.placement import policy_step_tags

    with pytest.raises(ValueError, match="PHI4_K8S_STEP_GPUS must be a whole number"):
        policy_step_tags({"PHI4_K8S_STEP_GPUS": "one"})
    with pytest.raises(ValueError, match="PHI4_K8S_GPU_NODE_SELECTOR must be key=value"):
        policy_step_tags({"PHI4_K8S_STEP_GPUS": "1", "PHI4_K8S_GPU_NODE_SELECTOR": "gpu"})
