"""A ``kill -9`` of a ``dagster asset materialize`` run in the middle of a step of the ``duckdb``
pool: the run stays STARTED and keeps the pool's only slot. The next run must not wait for it
for ever, with no daemon (the instance of ``dagster.yaml`` frees the slot from the blocked run)
and with one (run monitoring, through the project's run launcher).

The runs are of a throwaway code location in the test's folder (an asset that sleeps inside the
pool, one that does not), on a Dagster home that has the project's ``dagster.yaml``: the pool
settings and the recovery machinery are the project's own, the assets load nothing."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

from phi4_assets.ops.runs import (PidCheckingRunLauncher, RecoveringInstance, _alive, _mapped_files,
                              clean_stale_semaphores, release_dead_runs)
from phi4_assets.config.settings import REPO_ROOT

DEFS = '''
import time
import dagster as dg

@dg.asset(pool="duckdb")
def slow():
    time.sleep(120)

@dg.asset(pool="duckdb")
def quick():
    return 1

defs = dg.Definitions(assets=[slow, quick])
'''
DAGSTER = Path(sys.executable).with_name("dagster")
# Process liveness and the semaphores are read from /proc and /dev/shm.
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
SHM = Path("/dev/shm")


def _shm_names() -> set[str]:
    return {p.name for p in SHM.glob("sem.mp-*")} if SHM.is_dir() else set()


def _mapped(name: str) -> bool:
    """Whether a process maps the semaphore ``name`` (uses it): by inode, as glibc maps it under
    a temporary name."""
    try:
        st = (SHM / name).stat()
    except FileNotFoundError:
        return False
    key = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            if key in _mapped_files(maps.read_text(), str(SHM)):
                return True
        except OSError:
            pass
    return False


def _materialize(folder: Path, home: Path, asset: str, **kwargs) -> subprocess.Popen:
    """``dagster asset materialize`` of one asset of the throwaway code location."""
    return subprocess.Popen([str(DAGSTER), "asset", "materialize", "-f", "defs.py", "--select", asset],
                            cwd=folder, env={**os.environ, "DAGSTER_HOME": str(home)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)


@pytest.fixture
def killed_run(tmp_path):
    """A Dagster home with the project's dagster.yaml, its instance, and the id of a CLI run
    killed (the whole process group, ``kill -9``) while its step held the duckdb slot; then the
    multiprocessing semaphores that appeared with it and that the kill left behind."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    (tmp_path / "defs.py").write_text(DEFS)
    from dagster._core.instance.ref import InstanceRef

    instance = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))
    assert isinstance(instance, RecoveringInstance)  # dagster.yaml's instance_class
    before = _shm_names()
    first = _materialize(tmp_path, home, "slow", start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots:
            assert first.poll() is None, first.stdout.read()
            assert time.monotonic() < deadline, "the first run never took the duckdb slot"
            time.sleep(0.3)
        (claim,) = instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots
        while not instance.all_logs(claim.run_id, of_type=dg.DagsterEventType.STEP_START):
            assert time.monotonic() < deadline, "the first run's step never started"
            time.sleep(0.3)  # now a step process, mid-step, exists too
        run = instance.get_run_by_id(claim.run_id)
        assert release_dead_runs(instance) == []  # alive: left alone
        launcher = instance.run_launcher
        assert isinstance(launcher, PidCheckingRunLauncher)
        assert launcher.check_run_worker_health(run).status.value == "RUNNING"
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        time.sleep(0.5)  # the group's other processes die with it (reaped by init)
        leaked = _shm_names() - before
        yield SimpleNamespace(home=home, folder=tmp_path, instance=instance, run_id=claim.run_id, leaked=leaked)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
        instance.dispose()
        clean_stale_semaphores(min_age_s=0)  # what the kill left, if the test did not


def test_a_run_started_after_a_killed_cli_run_makes_progress_without_a_daemon(killed_run):
    instance = killed_run.instance
    run = instance.get_run_by_id(killed_run.run_id)
    assert run.status == dg.DagsterRunStatus.STARTED  # what the kill leaves
    assert instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots

    started = time.monotonic()
    second = _materialize(killed_run.folder, killed_run.home, "quick")
    try:
        out, _ = second.communicate(timeout=60)
    finally:
        second.kill()
    took = time.monotonic() - started
    assert second.returncode == 0, out
    assert "Step blocked by limit for pool duckdb" in out and "RUN_SUCCESS" in out, out
    print(f"second run done {took:.1f}s after it started")

    run = instance.get_run_by_id(killed_run.run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert not instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots
    failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)[-1]
    assert "are gone" in failure.dagster_event.message

    # The kill took the resource tracker of multiprocessing with it: its semaphores stay behind,
    # used by no process. They go; a semaphore in use (this process's) stays.
    import multiprocessing

    lock = multiprocessing.get_context("spawn").Lock()
    in_use = "sem." + lock._semlock.name.lstrip("/")
    assert killed_run.leaked, "the kill left no semaphore behind"
    removed = clean_stale_semaphores(min_age_s=0)
    assert in_use not in removed and (SHM / in_use).exists()
    # Every one left is in use (another process of the machine may have made one meanwhile).
    assert all(_mapped(name) for name in killed_run.leaked & _shm_names())


def test_the_daemon_marks_a_killed_cli_run_failed_and_frees_its_slots(killed_run):
    """What the run monitoring daemon of ``make ui`` does each ``poll_interval_seconds``: one
    iteration of Dagster's monitoring, then one of its slot freeing, on the project's instance."""
    from dagster._daemon.monitoring import execute_concurrency_slots_iteration, execute_run_monitoring_iteration

    instance = killed_run.instance
    assert instance.run_monitoring_enabled
    context = SimpleNamespace(instance=instance, create_request_context=lambda: None)
    logger = logging.getLogger("test_killed_runs")
    list(execute_run_monitoring_iteration(context, logger))
    run = instance.get_run_by_id(killed_run.run_id)
    assert run.status == dg.DagsterRunStatus.FAILURE
    time.sleep(instance.run_monitoring_settings["free_slots_after_run_end_seconds"] + 0.5)
    list(execute_concurrency_slots_iteration(context, logger))
    assert not instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots


def test_a_zombie_and_a_recycled_pid_are_dead():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while _alive(child.pid) and time.monotonic() < deadline:  # exited, not reaped: a zombie
        time.sleep(0.05)
    assert not _alive(child.pid)
    child.wait()
    assert not _alive(child.pid)
    assert _alive(os.getpid(), since=time.time())
    # An event logged an hour before this process started was not logged by this process.
    started = time.time() - float(Path("/proc/uptime").read_text().split()[0]) \
        + int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
    assert not _alive(os.getpid(), since=started - 3600)
