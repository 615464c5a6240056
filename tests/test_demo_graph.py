"""The whole graph, end to end, the way ``phi4 demo`` runs it: every stage in order on the tiny
profile (scripted teacher on loopback), from an empty state to Table 9 and Figure 6."""

import duckdb
import dagster as dg
import pytest

from phi4_assets.defs import table_schemas
from phi4_assets.cli.demo import run_demo, stages
from phi4_assets.core.warehouse import column_names
from scripted import script, scripted_endpoint


@pytest.fixture
def judge_endpoint(state, monkeypatch):
    """The scripted teacher and judge (tests/scripted.py) on loopback, as the endpoint."""
    with scripted_endpoint(script, monkeypatch) as stub:
        yield stub


def test_the_demo_runs_every_stage_from_an_empty_state(state, judge_endpoint, capsys):
    with dg.DagsterInstance.ephemeral() as instance:
        code = run_demo(instance=instance)
        out = capsys.readouterr().out
        assert code == 0, out
        stages_run = [line[3:].split(":")[0] for line in out.splitlines() if line.startswith("== ") and ":" in line]
        for stage in stages():
            assert any(s.startswith(stage.name) for s in stages_run), stage.name
        assert "== demo done" in out
        # It ends with what the user came for: Table 9, the figures, the loss curves, the UI.
        end = out[out.index("== demo done"):]
        assert "Table 9 (ablation_table):" in end and "| SimpleQA correct" in end
        assert str(state.state_dir / "reports" / "simpleqa_evolution.png") in end
        assert "dpo2_model: " in end and "loss_curve.png" in end  # (tiny searches no PTS window: no view)
        assert "make ui   -> http://127.0.0.1:3000" in end

        # Run again with nothing changed: every stage but the sources is up to date and skipped.
        assert run_demo(instance=instance) == 0
        again = capsys.readouterr().out
        ran = [line for line in again.splitlines() if line.startswith("== ") and ":" in line
               and "up to date" not in line]
        assert [line.split(":")[0] for line in ran] == ["== sources"]
        assert "Table 9 (ablation_table):" in again

    declared = table_schemas()
    with duckdb.connect(str(state.warehouse), read_only=True) as con:
        tables = {t for (t,) in con.execute("select table_name from information_schema.tables "
                                             "where table_schema = 'phi4' and table_type = 'BASE TABLE'").fetchall()}
        assert tables == set(declared)  # every asset wrote its table, and nothing else is there
        for name, schema in declared.items():
            actual = con.execute("select column_name, data_type from information_schema.columns where "
                                 "table_schema = 'phi4' and table_name = ? order by ordinal_position",
                                 [name]).fetchall()
            assert actual == [(c.name, c.type) for c in schema.columns], name
        ablation = con.execute("select row, \"both (final) n\" from phi4.ablation_table").fetchall()
        evolution = {s for (s,) in con.execute("select distinct stage from phi4.simpleqa_evolution "
                                               "where source = 'ours'").fetchall()}
    assert len(ablation) >= 10 and any(n > 0 for _, n in ablation)
    assert evolution == {"base", "sft", "dpo1", "final"}
    figure = state.state_dir / "reports" / "simpleqa_evolution.png"
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert column_names(declared["ablation_table"])[:3] == ["benchmark", "metric", "row"]


def test_a_stage_is_up_to_date_until_an_input_or_its_code_changes():
    from phi4_assets.cli.demo import up_to_date

    content = {"value": "a"}

    @dg.asset(code_version="1")
    def upstream():
        return dg.Output(content["value"], data_version=dg.DataVersion(content["value"]))

    def downstream_asset(version: str):
        @dg.asset(name="downstream", code_version=version)
        def downstream(upstream):
            return upstream * 2
        return downstream

    with dg.DagsterInstance.ephemeral() as instance:
        assets = [upstream, downstream_asset("1")]
        graph = dg.Definitions(assets=assets).resolve_asset_graph()
        assert not up_to_date(instance, graph, ("downstream",), None)  # never materialized
        dg.materialize(assets, instance=instance)
        assert up_to_date(instance, graph, ("upstream", "downstream"), None)
        dg.materialize(assets, selection=["upstream"], instance=instance)  # the same data again
        assert up_to_date(instance, graph, ("downstream",), None)
        content["value"] = "b"  # new data upstream
        dg.materialize(assets, selection=["upstream"], instance=instance)
        assert not up_to_date(instance, graph, ("downstream",), None)
        dg.materialize(assets, selection=["downstream"], instance=instance)
        assert up_to_date(instance, graph, ("downstream",), None)
        changed = [upstream, downstream_asset("2")]  # new code
        assert not up_to_date(instance, dg.Definitions(assets=changed).resolve_asset_graph(), ("downstream",), None)


def test_a_failed_stage_says_what_failed_and_how_to_resume(state, judge_endpoint, capsys):
    with dg.DagsterInstance.ephemeral() as instance:
        code = run_demo(start_from="pts", instance=instance)  # nothing before it was materialized
    out = capsys.readouterr().out
    assert code == 1
    failed = [line for line in out.splitlines() if line.strip().startswith("failed:")]
    assert failed and any(name in failed[0] for name in ("dpo1_mix_pairs", "pts_dpo_pairs", "dpo1_model"))
    assert "exactly one row" in failed[0]  # the error's last line, not a traceback
    assert 'resume with: phi4 demo --from "pts"' in out


def test_phi4_demo_outside_make_uses_the_default_dagster_home(state, monkeypatch, capsys):
    """``phi4 demo`` run by hand, with no DAGSTER_HOME: the Makefile's default, not a traceback."""
    import os

    from phi4_assets.cli.main import main

    monkeypatch.setenv("DAGSTER_HOME", "recorded")  # so that the test's end restores the variable as it was
    monkeypatch.delenv("DAGSTER_HOME")
    assert main(["demo", "--stop-after", "sources"]) == 0
    home = state.state_dir / "dagster_home"
    assert os.environ["DAGSTER_HOME"] == str(home) and (home / "dagster.yaml").exists()
    assert f"DAGSTER_HOME is not set: using {home}" in capsys.readouterr().out


def test_phi4_demo_takes_a_profile_and_refuses_a_bad_one_before_running(state, monkeypatch, capsys):
    from phi4_assets.cli.main import main

    monkeypatch.setenv("PHI4_PROFILE", "small")
    assert main(["demo", "--profile", "huge"]) == 2
    assert "unknown profile 'huge'" in capsys.readouterr().err
    monkeypatch.setenv("DAGSTER_HOME", str(state.state_dir / "dagster_home"))
    (state.state_dir / "dagster_home").mkdir(parents=True)
    assert main(["demo", "--profile", "tiny", "--stop-after", "sources"]) == 0
    import os

    assert os.environ["PHI4_PROFILE"] == "tiny"


def test_the_stages_are_derived_from_the_definitions_every_asset_in_exactly_one():
    import phi4_assets.defs

    every = [key for stage in stages() for key in stage.keys]
    graph = phi4_assets.defs.load().resolve_asset_graph()
    assert sorted(every) == sorted(k.to_user_string() for k in graph.get_all_asset_keys())  # each once
    order = {key: i for i, stage in enumerate(stages()) for key in stage.keys}
    for key in graph.get_all_asset_keys():  # no stage needs a later one
        for parent in graph.get(key).parent_keys:
            assert order[parent.to_user_string()] <= order[key.to_user_string()], (parent, key)
    assert {s.name: s.partitioned_by for s in stages() if s.partitioned_by} == {
        "hallucination shards": "shards", "pts domains": "domains", "evaluation stages": "stages"}


def test_stage_selection_and_a_dry_run_that_runs_nothing(state, capsys):
    from phi4_assets.cli.main import main
    from phi4_assets.cli.demo import selected_stages

    names = lambda chosen: [stage.name for stage in chosen]  # noqa: E731
    assert names(selected_stages()) == ["sources", "hallucination shards", "hallucination", "sft", "pts domains",
                                        "pts", "judge", "evaluation stages", "evaluation"]
    assert names(selected_stages(start_from="pts", stop_after="judge")) == ["pts", "judge"]
    assert names(selected_stages(select=["judge", "sft"])) == ["sft", "judge"]  # graph order
    with pytest.raises(ValueError, match="unknown stage 'jugde'"):
        selected_stages(select=["jugde"])
    with pytest.raises(ValueError, match="does not combine"):
        selected_stages(start_from="pts", select=["judge"])

    assert main(["demo", "--dry-run", "--select", "sft,judge", "--profile", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "  sft: sft_dataset, sft_model" in out and "  judge: " in out and "judge_candidates" in out
    assert "sources:" not in out and "sft_dataset" in out.split("The demo would run")[1]
    assert "total" in out  # the teacher-call estimate of the selected assets
    assert not state.warehouse.exists()  # nothing ran
