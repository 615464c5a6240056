"""Operating the graph: seed shards from incoming files, the sensor, the budgeted schedule, the
retraining condition, and a parallel multi-shard backfill on one DuckDB file."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import dagster as dg
import duckdb
import pandas as pd
import pytest

from phi4_assets.defs import hallucination as h
from phi4_assets.defs import operations, sources
from phi4_assets.defs.partitions import register_seed_shards, seed_shard_keys
from phi4_assets.defs.resources import build_resources
from phi4_assets.defs.training import retrain_when_data_changes
from phi4_assets.config.settings import REPO_ROOT
from phi4_assets.sources.shards import assign_shards, file_shard_keys, set_name, shard_keys

SEED = {"question": "Which river flows through Lyon besides the Rhone?", "answer": "Saone", "aliases": [],
        "topic": "geography", "difficulty": "medium"}


def write_seed_file(path, n, prefix):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"{prefix}-{i:03d}", **SEED, "question": f"{SEED['question']} ({i})"})
                            + "\n" for i in range(n)))


# -- shards (pure) -------------------------------------------------------------------------

def test_shards_of_the_shipped_set_and_of_incoming_sets():
    seeds = pd.DataFrame({"id": [f"t{i:02d}" for i in range(7)] + ["g1", "g0", "g3", "g2"],
                          "seed_set": ["shipped"] * 7 + ["geo"] * 4})
    shards = assign_shards(seeds, shard_size=3, cap=5)  # in id order; the cap applies to the shipped set
    assert list(shards) == ["000", "000", "000", "001", "001", None, None, "geo-000", "geo-000", "geo-001",
                            "geo-000"]
    assert shard_keys(seeds, 3, 5) == ["000", "001", "geo-000", "geo-001"]
    assert file_shard_keys(0, 3, "geo") == ["geo-000"] and file_shard_keys(7, 3, "shipped") == ["000", "001", "002"]
    assert set_name("Geo_Extra") == "geo_extra"
    for bad in ("shipped", "geo-001", "a b", "012"):
        with pytest.raises(ValueError, match="incoming seed file"):
            set_name(bad)


def test_the_budget_takes_shards_in_order_while_they_fit():
    pick = operations.shards_to_generate
    assert pick(["a", "b", "c", "d"], {"a": 40, "b": 50, "c": 20, "d": 1}, 100) == (["a", "b"], "2 shard(s), about 90 of 100 "
                                                                                   "teacher tokens")
    assert pick(["a", "b"], {"a": 40, "b": None}, 100)[0] == ["a"]  # unknown costs the whole budget
    assert pick(["a", "b"], {"a": None, "b": 1}, 100)[0] == ["a"]
    assert pick(["a", "b"], {"a": 150, "b": 30}, 100) == (["b"], "1 shard(s), about 30 of 100 teacher tokens; "
                                                                  "over the budget alone: a (150)")


# -- the sensor and the schedule -----------------------------------------------------------

def test_the_sensor_registers_a_valid_incoming_file_and_reports_a_bad_one(state, monkeypatch, stub_teacher):
    write_seed_file(state.incoming_dir / "geo-extra.jsonl", 3, "geo")
    (state.incoming_dir / "broken.jsonl").write_text('{"id": "x1", "question": "Q?"}\n')
    write_seed_file(state.incoming_dir / "zz-clash.jsonl", 1, "geo")  # reuses geo-000 (read after geo-extra)
    instance = dg.DagsterInstance.ephemeral()
    with dg.build_sensor_context(instance=instance) as context:
        result = operations.incoming_seed_files(context)
    (request,) = result.dynamic_partitions_requests
    assert request.partitions_def_name == "seed_shards"
    assert list(request.partition_keys) == ["000", "001", "geo-extra-000"]
    assert [r.asset_selection for r in result.run_requests] == [[sources.trivia_seeds.key]]
    instance.add_dynamic_partitions("seed_shards", list(request.partition_keys))
    with dg.build_sensor_context(instance=instance) as context:
        again = operations.incoming_seed_files(context)
    assert isinstance(again, dg.SkipReason) and "broken.jsonl:1" in again.skip_message
    assert (f"zz-clash.jsonl:1: field 'id': id 'geo-000' is already used by {state.incoming_dir / 'geo-extra.jsonl'}:1"
            in again.skip_message)

    # The registered file's questions join the seeds and make their own shard.
    resources = build_resources()
    assets = [sources.trivia_seeds, sources.base_model, *h.SHARDED_ASSETS]
    dg.materialize(assets, selection=[sources.trivia_seeds.key, sources.base_model.key], resources=resources,
                   instance=instance)
    result = dg.materialize(assets, selection=[h.policy_answer_samples.key], partition_key="geo-extra-000",
                            resources=resources, instance=instance)
    samples = result.output_for_node("policy_answer_samples")
    assert sorted(samples["question_id"].unique()) == ["geo-000", "geo-001", "geo-002"]
    assert set(samples["shard"]) == {"geo-extra-000"}


def run_sensor(instance=None):
    with dg.build_sensor_context(instance=instance or dg.DagsterInstance.ephemeral()) as context:
        return operations.incoming_seed_files(context)


def test_a_directory_or_a_fifo_named_jsonl_is_reported_and_the_valid_files_still_register(state):
    write_seed_file(state.incoming_dir / "geo-extra.jsonl", 3, "geo")
    (state.incoming_dir / "adir.jsonl").mkdir()
    os.mkfifo(state.incoming_dir / "afifo.jsonl")  # opened for reading, it would block for a writer

    def hung(signum, frame):
        raise TimeoutError("the sensor hangs on the FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(30)
    try:
        result = run_sensor()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert list(result.dynamic_partitions_requests[0].partition_keys) == ["000", "001", "geo-extra-000"]
    errors = []
    seed_shard_keys(on_error=lambda path, message: errors.append((path.name, message)))
    assert errors == [("adir.jsonl", f"{state.incoming_dir / 'adir.jsonl'}: a directory, not a regular file: "
                                     "only regular files are read"),
                      ("afifo.jsonl", f"{state.incoming_dir / 'afifo.jsonl'}: a FIFO, not a regular file: "
                                      "only regular files are read")]


def test_a_question_already_asked_is_refused_like_a_used_id_naming_both_places(state):
    shipped = state.data_dir / "seeds" / "trivia.jsonl"
    first = json.loads(shipped.read_text().splitlines()[0])
    write_seed_file(state.incoming_dir / "geo-extra.jsonl", 3, "geo")
    # The shipped question in other case and punctuation, and geo-extra's second one, under new ids.
    (state.incoming_dir / "again-shipped.jsonl").write_text(
        json.dumps({"id": "new-1", **SEED, "question": first["question"].upper().rstrip("?") + " ?"}) + "\n")
    (state.incoming_dir / "zz-again.jsonl").write_text(
        json.dumps({"id": "new-2", **SEED, "question": f"  {SEED['question'].lower()} (1)"}) + "\n")
    result = run_sensor()
    assert list(result.dynamic_partitions_requests[0].partition_keys) == ["000", "001", "geo-extra-000"]
    errors = {}
    seed_shard_keys(on_error=lambda path, message: errors.update({path.name: message}))
    incoming = state.incoming_dir
    assert errors == {
        "again-shipped.jsonl": f"{incoming / 'again-shipped.jsonl'}:1: field 'question': the same question (once "
                               f"normalised) as {shipped}:1 (id {first['id']!r})",
        "zz-again.jsonl": f"{incoming / 'zz-again.jsonl'}:1: field 'question': the same question (once normalised) "
                          f"as {incoming / 'geo-extra.jsonl'}:2 (id 'geo-001')",
    }


def test_two_files_named_alike_but_for_case_do_not_share_a_seed_set(state):
    write_seed_file(state.incoming_dir / "Geo.jsonl", 1, "upper")
    (state.incoming_dir / "geo.jsonl").write_text(
        json.dumps({"id": "lower-0", **SEED, "question": "A question nobody asked before?"}) + "\n")
    errors = []
    assert seed_shard_keys(on_error=lambda path, message: errors.append(message)) == ["000", "001", "geo-000"]
    assert errors == [f"{state.incoming_dir / 'geo.jsonl'}: seed set 'geo' is already taken by "
                      f"{state.incoming_dir / 'Geo.jsonl'} (file names that differ only in case)"]


def test_phi4_demo_skips_and_reports_a_bad_incoming_file_as_the_sensor_does(state, capsys):
    from phi4_assets.cli.demo import run_demo

    write_seed_file(state.incoming_dir / "geo-extra.jsonl", 3, "geo")
    (state.incoming_dir / "broken.jsonl").write_text(json.dumps({"id": "x1", **SEED, "answer": 3}) + "\n")
    with dg.DagsterInstance.ephemeral() as instance:
        code = run_demo(select=["sources"], instance=instance)
        skipped = run_sensor(instance)  # after the demo: nothing new, the same file reported the same way
    out = capsys.readouterr().out
    assert code == 0, out
    reported = (f"ignored: {state.incoming_dir / 'broken.jsonl'}:1: field 'answer': expected a non-empty string, "
                "got 3")
    assert reported in out.splitlines()
    assert "registered seed shards: 000, 001, geo-extra-000" in out
    assert skipped.skip_message == f"no new seed file in {state.incoming_dir}; {reported}"


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:  # the schedule context needs an instance it can reopen
        yield instance


def test_the_schedule_requests_the_next_shards_within_the_token_budget(state, tmp_path, monkeypatch, stub_teacher,
                                                                      instance):
    register_seed_shards(instance)
    tokens = operations._shard_tokens(["000", "001"])
    assert tokens["000"] > 0 and tokens["001"] > 0

    def tick(budget):
        config = tmp_path / f"budget-{budget}.toml"
        config.write_text(f"[profile]\nschedule_token_budget = {budget}\n")
        monkeypatch.setenv("PHI4_CONFIG", str(config))
        # Closed here, in order: the context opens its own instance, which sets Dagster's current
        # definitions-state storage until it is closed (left to the garbage collector, it would
        # be restored after this test's instance is gone, breaking later tests).
        with dg.build_schedule_context(instance=instance, resources={"project": build_resources()["project"]}) as context:
            return operations.seed_generation_schedule(context)

    requests = tick(tokens["000"])
    assert [r.partition_key for r in requests] == ["000"]
    assert [r.partition_key for r in tick(tokens["000"] + tokens["001"])] == ["000", "001"]
    assert "over the budget alone: 000" in tick(1).skip_message


# -- retraining only when the data changed -------------------------------------------------

def test_a_model_retrains_when_its_data_version_changes_not_on_every_tick():
    version = {"value": "a"}

    @dg.asset
    def data() -> dg.Output[int]:
        return dg.Output(1, data_version=dg.DataVersion(version["value"]))

    @dg.asset(automation_condition=retrain_when_data_changes("data"))
    def model(data: int) -> int:
        return data

    instance = dg.DagsterInstance.ephemeral()
    assets = [data, model]
    dg.materialize(assets, instance=instance)
    cursor = dg.evaluate_automation_conditions(defs=assets, instance=instance).cursor
    for expected, change in ((0, None), (0, "a"), (1, "b")):
        if change:
            version["value"] = change
            dg.materialize([data], instance=instance, selection=[data.key])  # same or new content
        result = dg.evaluate_automation_conditions(defs=assets, instance=instance, cursor=cursor)
        cursor = result.cursor
        assert result.get_num_requested(model.key) == expected, change


def _instance_at(home):
    """The Dagster instance of ``home`` (a DAGSTER_HOME folder), disposed on exit; the process
    environment is left alone (a process-wide DAGSTER_HOME would leak into later tests)."""
    from dagster._core.instance.ref import InstanceRef

    return dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


# -- a parallel backfill over one DuckDB file ----------------------------------------------

@pytest.mark.slow
def test_a_parallel_backfill_of_shards_has_no_duckdb_lock_failure(state, tmp_path, stub_teacher):
    """Two shard runs at once, each with the multiprocess executor, all writing one warehouse."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    with _instance_at(home) as instance:
        register_seed_shards(instance)
        dg.materialize([sources.trivia_seeds, sources.base_model], resources=build_resources(), instance=instance)
    # Two independent assets per shard: the multiprocess executor runs them side by side in one
    # run, and the two runs overlap too: four writers of one DuckDB file in all.
    selection = "reference_answers,bogus_questions"
    started = time.monotonic()
    runs = [subprocess.Popen([sys.executable, "-m", "dagster", "asset", "materialize", "-f",
                              str(REPO_ROOT / "definitions.py"), "--select", selection, "--partition", shard],
                             cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for shard in seed_shard_keys()]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, out in zip(runs, outputs):
        assert run.returncode == 0, out[-3000:]
        assert "Could not set lock" not in out
        assert "Launching subprocess" in out  # the multiprocess executor ran the steps
    with duckdb.connect(str(state.warehouse), read_only=True) as con:
        for table in ("reference_answers", "bogus_questions"):
            rows = dict(con.execute(f"select shard, count(*) from phi4.{table} group by shard").fetchall())
            assert rows == {"000": 6, "001": 6}, table
    print(f"parallel backfill of 2 shards: {time.monotonic() - started:.1f}s")


SLOW_RUN = """
import socket, time, dagster as dg

@dg.asset(pool="duckdb")
def slow():
    time.sleep(60)

dg.materialize([slow], instance=dg.DagsterInstance.get(), tags={"phi4/host": socket.gethostname()})
"""


def test_a_killed_run_is_released_with_its_pool_slot(tmp_path):
    from contextlib import ExitStack

    from phi4_assets.ops.runs import release_dead_runs

    stack = ExitStack()

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    child = subprocess.Popen([sys.executable, "-c", SLOW_RUN], env=env)
    try:
        instance = stack.enter_context(_instance_at(home))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots:
                break
            time.sleep(0.5)
        assert instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots, "the run never started"
        assert release_dead_runs(instance) == []  # alive: left alone
        child.kill()
        child.wait()
        (run_id,) = release_dead_runs(instance)
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_info("duckdb").claimed_slots
    finally:
        child.kill()
        stack.close()
