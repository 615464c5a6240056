"""Dagster's Postgres storage end to end, configured by ``deploy/docker/dagster.yaml``'s own
``storage`` and ``concurrency`` sections: a real PostgreSQL server on loopback (Debian's
``postgresql``: ``initdb`` and ``pg_ctl``, started here as the ``postgres`` user), a run of the
project's assets recorded in it, and a second instance reading the run, its materialization and
the pool limits back. Skipped, with the reason, where the server or ``dagster-postgres`` is
missing."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import yaml

from phi4_assets.core.served import free_port

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def _server_bin() -> Path | None:
    candidates = [Path(p).parent for p in (shutil.which("initdb"),) if p]
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    return next((d for d in candidates if (d / "initdb").exists() and (d / "pg_ctl").exists()), None)


@pytest.fixture(scope="module")
def postgres_port():
    pytest.importorskip("dagster_postgres", reason="the deploy extra (dagster-postgres) is not installed")
    bin_dir = _server_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server here (Debian's postgresql: initdb, pg_ctl)")
    run_as: list[str] = []
    root = tempfile.mkdtemp(prefix="phi4-pg-")
    if os.geteuid() == 0:  # the server refuses to run as root
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no postgres user to run the server as")
        os.chown(root, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data, port = Path(root) / "db", free_port()
    try:
        subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "dagster",
                        "--no-sync"], check=True, capture_output=True, timeout=120)
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-l", f"{root}/server.log", "-w",
                        "-t", "60", "-o", f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off",
                        "start"], check=True, capture_output=True, timeout=120)
    except subprocess.CalledProcessError as e:
        log = Path(root, "server.log")
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {e.stderr.decode()}\n{log.read_text() if log.exists() else ''}")
    try:
        yield port
    finally:
        subprocess.run([*run_as, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


def test_runs_events_and_pools_live_in_postgres_as_the_deploy_files_configure_them(state, postgres_port, tmp_path,
                                                                                      monkeypatch):
    import dagster as dg

    from phi4_assets.defs import sources
    from phi4_assets.defs.resources import build_resources

    deployed = yaml.safe_load((ROOT / "deploy" / "docker" / "dagster.yaml").read_text())
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": deployed["storage"],
                                                        "concurrency": deployed["concurrency"],
                                                        "telemetry": {"enabled": False}}))
    for key, value in {"USER": "dagster", "PASSWORD": "unused", "HOST": "127.0.0.1", "DB": "postgres",
                       "PORT": str(postgres_port)}.items():
        monkeypatch.setenv(f"DAGSTER_POSTGRES_{key}", value)

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        result = dg.materialize([sources.trivia_seeds], resources=build_resources(), instance=instance)
        assert result.success

    # A second process's view: a new instance on the same database.
    with dg.DagsterInstance.from_config(str(home)) as reader:
        record = reader.get_run_record_by_id(result.run_id)
        assert record is not None and record.dagster_run.status == dg.DagsterRunStatus.SUCCESS
        event = reader.get_latest_materialization_event(dg.AssetKey("trivia_seeds"))
        assert event is not None and event.run_id == result.run_id
        # Pool slots are held in Postgres: the duckdb pool's single writer holds across machines.
        assert reader.event_log_storage.supports_global_concurrency_limits
        assert reader.get_concurrency_config().pool_config.default_pool_limit == 1
