"""Recovery from killed runs, for every way a run is started (``phi4 demo``, the UI and daemon
of ``make ui``, a bare ``dagster asset materialize``). A run killed with
``kill -9`` (out of memory, a reboot) never records its end: it stays STARTED and keeps the pool
slots its steps claimed, and with one ``duckdb`` slot every later run waits on "Step blocked by
limit for pool duckdb" for ever. Dagster frees slots only for runs that finished, and its run
monitoring can only tell a dead run worker from a live one through the run launcher, which for
the default launcher cannot. So:

- ``release_dead_runs`` marks failed the runs whose processes are all gone (the pids are those of
  the events the run's own processes logged) and frees their pool slots; ``phi4 demo`` calls it
  before it starts.
- ``PidCheckingRunLauncher`` (``run_launcher`` in ``dagster.yaml``) is Dagster's default launcher
  that answers the run monitoring daemon's health check with the same test, so with ``make ui``
  the daemon marks a dead run failed and then frees its slots (``run_monitoring`` in
  ``dagster.yaml``), also for runs it did not launch.
- ``RecoveringInstance`` (``instance_class`` in ``dagster.yaml``) covers the runs that have no
  daemon, such as a bare ``dagster asset materialize``: when a step of a run is blocked by a pool
  limit, the process running it frees the slots of that pool's dead holders, and keeps checking
  while the step waits (the holder may be a step process that outlived its killed parent).

``dagster.yaml`` names this module, so every Dagster process on the instance (webserver, daemon,
code server, run workers) imports it: nothing heavy is imported at module level.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import threading
import time
from pathlib import Path

import dagster as dg

HOST_TAG = "phi4/host"  # the host a run started on: runs of another host are never judged dead here
log = logging.getLogger(__name__)

# -- killed runs -----------------------------------------------------------------------------

# The events only a run's own processes log: the run worker (``dagster asset materialize``, the
# process ``phi4 demo`` runs in, the worker a launcher started) logs RUN_START, each step process
# STEP_WORKER_STARTED and STEP_START. Other events of a run can come from the webserver or the
# daemon (enqueued, canceling, monitoring), processes that outlive the run: their pids say nothing.
_OWN_EVENTS = {dg.DagsterEventType.RUN_START, dg.DagsterEventType.STEP_WORKER_STARTED,
               dg.DagsterEventType.STEP_START}
# A process younger than the event its pid logged, by more than this, is not the one that logged
# it (the pid was recycled, e.g. after a reboot). Generous, so that a wall clock set forward while
# a run goes on does not make its live process look recycled.
_RECYCLED_PID_SLACK_S = 60.0
_PROC = Path("/proc")


def _process_age(pid: int) -> float | None:
    """Seconds since process ``pid`` started, from ``/proc`` (the boot-time clock, which a change of
    the wall clock does not move); None when ``/proc`` cannot say."""
    try:
        fields = (_PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
        uptime = float((_PROC / "uptime").read_text().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, since: float | None = None) -> bool:
    """Whether process ``pid`` exists and can be the one that logged an event at ``since`` (epoch
    seconds). A zombie (killed, not yet reaped) is dead; so is a process that started well after
    ``since``: its pid was recycled. When in doubt (no ``/proc``, no permission) it is alive: a run
    is never marked failed while its process may still be running."""
    stat_file = _PROC / str(pid) / "stat"
    if (_PROC / "self" / "stat").exists():
        try:
            state = stat_file.read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        except (OSError, IndexError):
            return True
        if state in ("Z", "X"):
            return False
        age = _process_age(pid)
        if since is not None and age is not None and age < time.time() - since - _RECYCLED_PID_SLACK_S:
            return False
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _storage_is_local(instance: dg.DagsterInstance) -> bool:
    """Whether the instance keeps its runs in SQLite files or in memory. Such an instance is used
    from one machine only (SQLite over a network share is not supported by Dagster), so the pids
    its runs logged are pids of this machine."""
    from dagster._core.storage.runs import InMemoryRunStorage, SqliteRunStorage

    return isinstance(instance.run_storage, (SqliteRunStorage, InMemoryRunStorage))


def run_processes(instance: dg.DagsterInstance, run: dg.DagsterRun) -> dict[int, float] | None:
    """The processes that ran ``run``: pid -> when it first logged an event of its own. None when
    their pids are not this machine's to check: the run is tagged with another host (``phi4
    demo`` tags its runs), or it is untagged and the run storage is shared (not SQLite)."""
    host = run.tags.get(HOST_TAG)
    if host is not None and host != socket.gethostname():
        return None
    if host is None and not _storage_is_local(instance):
        return None
    processes: dict[int, float] = {}
    for entry in instance.all_logs(run.run_id, of_type=_OWN_EVENTS):
        pid = entry.dagster_event.pid if entry.dagster_event else None
        if pid:
            processes[pid] = min(processes.get(pid, entry.timestamp), entry.timestamp)
    return processes


def run_is_dead(instance: dg.DagsterInstance, run: dg.DagsterRun) -> bool:
    """True when every process that ran ``run`` is gone. False when one may be alive, when the
    run has no process yet (queued, or launched and not started: Dagster's start timeout covers
    those) and when its processes are not this machine's."""
    processes = run_processes(instance, run)
    return bool(processes) and not any(_alive(pid, since) for pid, since in processes.items())


def release_dead_runs(instance: dg.DagsterInstance, pool: str | None = None) -> list[str]:
    """Mark failed the runs left started by processes that no longer exist (a ``kill -9``, out of
    memory, a reboot), and free the pool slots they held, or still hold once finished: otherwise
    every later step of their pools waits for a slot that is never given back. ``pool``: only the
    runs holding a slot of that pool. Runs with a live process, and runs of another host, are
    left alone. Returns the ids of the runs released."""
    storage = instance.event_log_storage
    if pool is not None:
        info = storage.get_concurrency_info(pool)
        run_ids = {s.run_id for s in info.claimed_slots} | {s.run_id for s in info.pending_steps}
    else:
        in_progress = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTING,
                                                                         dg.DagsterRunStatus.STARTED]))
        run_ids = {run.run_id for run in in_progress}
        if storage.supports_global_concurrency_limits:
            run_ids |= set(storage.get_concurrency_run_ids())
    released = []
    for run_id in sorted(run_ids):
        run = instance.get_run_by_id(run_id)
        if run is None or not run_is_dead(instance, run):
            continue
        processes = ", ".join(str(pid) for pid in sorted(run_processes(instance, run) or {}))
        if not run.is_finished:
            instance.report_run_failed(run, f"The processes that ran this run ({processes}) are gone "
                                            "(killed): marked failed, its pool slots freed.")
        if storage.supports_global_concurrency_limits:
            storage.free_concurrency_slots_for_run(run_id)
        released.append(run_id)
    if released:
        clean_stale_semaphores()
    return released


_SEM_PREFIX = "sem.mp-"  # the POSIX named semaphores of Python's multiprocessing (Lock, Event, ...)


def _mapped_files(maps: str, under: str) -> set[tuple[int, int, int]]:
    """(device major, minor, inode) of the files under ``under`` that a ``/proc/<pid>/maps`` maps.
    By inode, not name: glibc maps a new semaphore under a temporary name before it links it to
    its own, so the name in ``maps`` is the temporary one, marked deleted."""
    found = set()
    for line in maps.splitlines():
        if under not in line:
            continue
        parts = line.split(maxsplit=5)
        try:
            major, minor = (int(x, 16) for x in parts[3].split(":"))
            found.add((major, minor, int(parts[4])))
        except (IndexError, ValueError):
            continue
    return found


def clean_stale_semaphores(min_age_s: float = 60.0, shm: Path = Path("/dev/shm")) -> list[str]:
    """Remove the multiprocessing semaphores (``/dev/shm/sem.mp-*``) that no process uses any more.

    Dagster's multiprocess executor makes a few per run; the ``multiprocessing`` resource tracker
    removes them when the run's processes end, unless it is killed with them (``kill -9`` of the
    process group), which leaves them behind. Their names say nothing of the run, but whether
    they are in use can be told: a process using a named semaphore has its file mapped (it is in
    ``/proc/<pid>/maps``) from before the name exists, and a process can only open one by a name
    it got from a process that has it open. So one of ours (owned by this user; multiprocessing
    makes them readable by their owner only) that no process maps, older than ``min_age_s``, can
    never be used again and is removed. Nothing is removed where ``/proc`` does not say, or
    where a Python process cannot be inspected. Returns the names removed."""
    if not shm.is_dir() or not (_PROC / "self" / "maps").exists():
        return []
    uid, now = os.getuid(), time.time()
    candidates: dict[tuple[int, int, int], Path] = {}
    for path in shm.glob(_SEM_PREFIX + "*"):
        try:
            st = path.lstat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_uid == uid and now - st.st_mtime >= min_age_s:
            candidates[(os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)] = path
    if not candidates:
        return []
    for proc in _PROC.iterdir():
        if not proc.name.isdigit():
            continue
        try:
            maps = (proc / "maps").read_text()
        except FileNotFoundError:
            continue  # ended meanwhile
        except OSError:
            # One we may not inspect: another user's, or one holding privileges ours lack (a
            # sandbox's init). Only a Python program and the processes it starts, which run with
            # its privileges, share its semaphores: one that is Python leaves us unable to tell.
            try:
                if (proc / "comm").read_text().startswith("python"):
                    return []
            except OSError:
                pass
            continue
        for key in _mapped_files(maps, str(shm)):
            candidates.pop(key, None)
        if not candidates:
            return []
    removed = []
    for key, path in candidates.items():
        try:
            if path.lstat().st_ino == key[2]:  # still the file judged unused
                path.unlink()
                removed.append(path.name)
        except OSError:
            pass
    return removed


class PidCheckingRunLauncher(dg.DefaultRunLauncher):
    """Dagster's default run launcher, plus the health check of run monitoring: a STARTED run whose
    processes are all gone (``run_is_dead``) is reported FAILED, and the monitoring daemon marks
    it failed; ``free_slots_after_run_end_seconds`` then frees its pool slots. The check sees the
    processes through the run's events, so it also covers runs the launcher did not start (a
    killed ``dagster asset materialize`` or ``phi4 demo``) while ``make ui`` runs. A run it cannot
    judge (another host's) is reported RUNNING: for this launcher, anything else fails the run."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun):
        from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

        if run_is_dead(self._instance, run):
            pids = ", ".join(str(pid) for pid in sorted(run_processes(self._instance, run) or {}))
            return CheckRunHealthResult(WorkerStatus.FAILED, f"the processes that ran it ({pids}) are gone")
        return CheckRunHealthResult(WorkerStatus.RUNNING)


_BLOCKED = ("Step blocked by limit for pool ", "Step still blocked by limit for pool ")
_WATCH_INTERVAL_S = 5.0


class RecoveringInstance(dg.DagsterInstance):
    """The Dagster instance of ``dagster.yaml``: Dagster's own, plus one hook for runs with no
    daemon to watch them (a bare ``dagster asset materialize``, ``phi4 demo``, a run worker).

    When a step is blocked by a pool limit, Dagster logs "Step blocked by limit for pool P" from
    the process that runs the step's run, through this instance. Then, in that process, a thread
    releases the dead runs holding slots of P (``release_dead_runs``), right away and every few
    seconds while the step waits: a holder may still be alive at first (a step process outlives
    its killed parent until its step ends). The thread ends when the step gets its slot or the run
    ends. Nothing runs unless a step is blocked, and a failure of the hook is logged, never raised
    into the run."""

    # What Dagster asks of an ``instance_class``: its own settings (none) and the default storages.
    @classmethod
    def config_schema(cls) -> dict:
        return {}

    @classmethod
    def config_defaults(cls, base_dir: str):
        from dagster._core.instance.ref import InstanceRef

        return InstanceRef.config_defaults(base_dir)

    def handle_new_event(self, event, *, batch_metadata=None) -> None:
        super().handle_new_event(event, batch_metadata=batch_metadata)
        try:
            message = event.dagster_event.message if event.dagster_event else None
            if event.is_dagster_event and event.dagster_event_type == dg.DagsterEventType.ENGINE_EVENT \
                    and message and message.startswith(_BLOCKED) and event.step_key:
                pool = message.split(" pool ", 1)[1].strip()
                self._watch_blocked_step(event.run_id, event.step_key, pool)
        except Exception:  # the hook must never break the run
            log.warning("could not start the check for dead runs holding pool slots", exc_info=True)

    _watch_lock = threading.Lock()

    def _watch_blocked_step(self, run_id: str, step_key: str, pool: str) -> None:
        with self._watch_lock:
            watching = self.__dict__.setdefault("_phi4_watching", set())
            if (run_id, step_key) in watching:
                return
            watching.add((run_id, step_key))
        threading.Thread(target=self._release_while_blocked, args=(run_id, step_key, pool),
                         name=f"phi4-dead-runs-{step_key}", daemon=True).start()

    def _release_while_blocked(self, run_id: str, step_key: str, pool: str) -> None:
        try:
            while True:
                for dead in release_dead_runs(self, pool):
                    self.report_engine_event(f"Run {dead}, which held a slot of pool {pool}, was left started "
                                             "by processes that are gone: marked failed, its slots freed.",
                                             self.get_run_by_id(run_id))
                run = self.get_run_by_id(run_id)
                waiting = [s for s in self.event_log_storage.get_concurrency_info(pool).pending_steps
                           if s.run_id == run_id and s.step_key == step_key and s.assigned_timestamp is None]
                if run is None or run.is_finished or not waiting:
                    return
                time.sleep(_WATCH_INTERVAL_S)
        except Exception:
            log.warning("the check for dead runs holding pool slots failed", exc_info=True)
        finally:
            with self._watch_lock:
                self.__dict__.get("_phi4_watching", set()).discard((run_id, step_key))
