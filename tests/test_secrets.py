"""``OPENAI_API_KEY`` reaches the teacher endpoint and nothing else: no warehouse or cache
table, no Dagster run or event record, no captured log.

The key is read through ``dg.EnvVar`` (``defs/resources.py``), so Dagster records the variable's
name, not its value, in the run config; the teacher cache keys calls on (model, messages,
parameters), never on the client's credentials. This test holds both to that: it sets a
distinctive fake key, materializes the cheapest slice of the graph that calls the teacher (the
seeds, the tiny base model and two teacher-written assets of one shard, through the scripted
endpoint on loopback), checks the key was really sent, then searches every place a run leaves
text for it.
"""

import logging
import uuid
from pathlib import Path

import dagster as dg
import duckdb
from dagster._serdes import serialize_value

from phi4_assets.defs import hallucination as h
from phi4_assets.defs import sources
from phi4_assets.defs.partitions import register_seed_shards, seed_shard_keys
from phi4_assets.defs.resources import build_resources


def _duckdb_hits(path: Path, secret: str) -> list[str]:
    """``schema.table.column`` of every value in the DuckDB file that contains ``secret``, every
    column cast to text (lists and structs included)."""
    hits = []
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute("select table_schema, table_name, column_name from information_schema.columns "
                              "where table_catalog = current_database()").fetchall()
        for schema, table, column in columns:
            found = con.execute(f'select count(*) from "{schema}"."{table}" '
                                f'where strpos(cast("{column}" as varchar), ?) > 0', [secret]).fetchone()[0]
            if found:
                hits.append(f"{schema}.{table}.{column}")
    return hits


def _file_hits(root: Path, secret: str, skip_suffixes=(".duckdb", ".duckdb.wal")) -> list[str]:
    """Files under ``root`` whose bytes contain ``secret`` (SQLite run and event storage, compute
    logs, reports). DuckDB files are skipped: they compress strings, so ``_duckdb_hits`` queries
    them instead."""
    needle = secret.encode()
    return [str(p) for p in root.rglob("*")
            if p.is_file() and not p.name.endswith(skip_suffixes) and needle in p.read_bytes()]


def test_openai_api_key_is_sent_but_recorded_nowhere(state, monkeypatch, tmp_path, caplog, capfd):
    from scripted import scripted_endpoint, scripted_teacher

    secret = f"sk-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    caplog.set_level(logging.DEBUG)
    home = tmp_path / "dagster_home"
    home.mkdir()
    with scripted_endpoint(scripted_teacher, monkeypatch) as stub, \
            dg.DagsterInstance.local_temp(tempdir=str(home)) as instance:
        assets = [sources.trivia_seeds, sources.base_model, h.reference_answers, h.bogus_questions]
        register_seed_shards(instance)
        resources = build_resources()
        dg.materialize(assets, selection=[sources.trivia_seeds.key, sources.base_model.key],
                       resources=resources, instance=instance)
        dg.materialize(assets, selection=[h.reference_answers.key, h.bogus_questions.key],
                       partition_key=seed_shard_keys()[0], resources=resources, instance=instance)

        # The key was in use: the endpoint received it (else this test would prove nothing).
        assert stub.hits > 0
        assert {hd.get("authorization") for hd in stub.headers} == {f"Bearer {secret}"}

        # Dagster's run storage (run config, tags) and event log (every event, metadata included).
        runs = instance.get_runs()
        assert len(runs) == 2 and all(r.is_success for r in runs)
        for run in runs:
            assert secret not in serialize_value(run), run.run_id
            events = instance.all_logs(run.run_id)
            assert events
            leaking = [e.dagster_event_type or e.user_message for e in events if secret in serialize_value(e)]
            assert leaking == [], run.run_id

    # Every table of every DuckDB file of the run's state: the warehouse and the teacher cache.
    databases = sorted(state.state_dir.rglob("*.duckdb"))
    assert state.warehouse in databases and state.teacher_cache in databases
    assert {str(db): _duckdb_hits(db, secret) for db in databases} == {str(db): [] for db in databases}
    # Everything else on disk: the instance's SQLite storage and captured compute logs, the state.
    assert list(home.rglob("runs/*.db")) and list(home.rglob("compute_logs/*.err"))  # not a vacuous scan
    assert _file_hits(home, secret) == []
    assert _file_hits(state.state_dir, secret) == []
    # Logs captured in this process: log records (any logger, any level) and stdout / stderr.
    assert [r.name for r in caplog.records if secret in r.getMessage()] == []
    out, err = capfd.readouterr()
    assert secret not in out and secret not in err
