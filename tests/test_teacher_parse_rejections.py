"""The tasks' own parsers as the teacher's validator, and the profile's failure-share limit,
through the assets on the tiny profile with a scripted teacher on loopback.

A reply the task's parser cannot read stays in the teacher cache with ``rejected_reason`` and is
asked again by the next run; a readable reply is a cache hit. With ``teacher_max_failure_share``
set, an asset whose calls mostly fail stops with an error naming the share and the limit, after
every answered call is cached.
"""

import json

import dagster as dg

from phi4_assets.defs import hallucination as h
from phi4_assets.defs import sources
from phi4_assets.defs.partitions import register_seed_shards
from phi4_assets.defs.resources import build_resources
from phi4_assets.hallucination import prompts
from phi4_assets.judge.prompts import verdict_problem
from phi4_assets.evaluation.graders import grade_problem
from phi4_assets.teacher.cache import TeacherCache
from scripted import scripted_endpoint, scripted_teacher, table
from stub_openai import StubReply

ASSETS = [sources.trivia_seeds, sources.base_model, h.policy_answer_samples, h.answer_checks, h.bogus_questions]
SHARD = "000"
# Dagster's retries (TEACHER_RETRY: 30 s, then 60 s) would only repeat the same failure here.
NO_RETRIES = {"execution": {"config": {"retries": {"disabled": {}}}}}


def _user(request: dict) -> str:
    return request["messages"][-1]["content"]


def _is(request: dict, system_start: str) -> bool:
    return request["messages"][0]["content"].startswith(system_start)


def test_each_validator_rejects_only_what_its_parser_cannot_read():
    assert prompts.answer_check_problem('{"matches_key": "Uncertain"}') is None
    assert prompts.answer_check_problem("False, it names another city.") is None
    assert prompts.answer_check_problem("Well, I think so.").startswith("unparseable: neither JSON")
    assert prompts.bogus_problem('{"bogus_question": "Who was Zorblax?", "quality": 1}') is None  # low quality: readable
    assert prompts.bogus_problem('{"bogus_question": 5}').startswith("unparseable: bogus_question must be")
    verdict = {"scores": {a: {"accuracy": 4, "style": 3, "detail": 3} for a in ("assistant_1", "assistant_2")}}
    assert verdict_problem(json.dumps(verdict)) is None
    assert verdict_problem("Both have merits.") == "unparseable: no JSON object in the reply"
    assert grade_problem("B - incorrect") is None and grade_problem("As the answer is wrong").startswith("unparseable")


def test_unparseable_answer_checks_are_asked_again_and_parseable_ones_are_cache_hits(state, monkeypatch):
    with scripted_endpoint(scripted_teacher, monkeypatch) as stub:  # Italy: an unreadable grade, every time
        resources, instance = build_resources(), dg.DagsterInstance.ephemeral()
        register_seed_shards(instance)
        dg.materialize(ASSETS, selection=[sources.trivia_seeds.key, sources.base_model.key], resources=resources,
                       instance=instance)
        dg.materialize(ASSETS, selection=[h.policy_answer_samples.key], partition_key=SHARD, resources=resources,
                       instance=instance)
        before = stub.hits
        dg.materialize(ASSETS, selection=[h.answer_checks.key], partition_key=SHARD, resources=resources,
                       instance=instance)
        first = stub.requests[before:]
        checks = table(state, "answer_checks")
        unreadable = checks[checks["failure"].notna()]
        assert 0 < len(unreadable) < len(first)  # some readable, some not
        assert set(unreadable["teacher_raw"]) == {"Well, I think the response is close enough."}
        bad_prompts = sorted(_user(r) for r in first if "Italy" in _user(r))
        assert len(bad_prompts) == len(unreadable)

        cached = TeacherCache(state.teacher_cache).calls().set_index("call_id")
        rejected = cached.loc[list(unreadable["teacher_call_id"]), "rejected_reason"]
        assert rejected.str.startswith("unparseable: neither JSON").all()
        assert cached["rejected_reason"].isna().sum() == len(first) - len(unreadable)

        before = stub.hits
        again = dg.materialize(ASSETS, selection=[h.answer_checks.key], partition_key=SHARD, resources=resources,
                               instance=instance)
        # Exactly the unreadable ones were asked again; the readable ones came from the cache.
        assert sorted(_user(r) for r in stub.requests[before:]) == bad_prompts
        meta = again.asset_materializations_for_node("answer_checks")[0].metadata
        assert meta["teacher_calls_made"].value == len(bad_prompts)
        assert meta["teacher_cache_hits"].value == len(first) - len(bad_prompts)
        assert meta["teacher_unusable"].value == len(bad_prompts)
        # The asset's handling is unchanged: the failure is recorded and the rules grade.
        second = table(state, "answer_checks")
        assert second.drop(columns=["id"]).equals(checks.drop(columns=["id"]))


def test_a_batch_over_the_profile_failure_share_fails_the_asset_and_keeps_every_answer(state, tmp_path,
                                                                                         monkeypatch):
    config = tmp_path / "phi4.toml"
    config.write_text("[profile]\nteacher_max_failure_share = 0.25\n")
    monkeypatch.setenv("PHI4_CONFIG", str(config))
    # One immediate retry instead of TEACHER_RETRY's 30 s and 60 s waits: it shows what a retry asks.
    monkeypatch.setattr(h.bogus_questions.op, "_retry_policy", dg.RetryPolicy(max_retries=1, delay=0))

    def script(request: dict, hit: int) -> StubReply:
        if _is(request, "Rewrite a trivia question") and "France" not in _user(request):
            return StubReply('{"bogus_question": 5}')  # unreadable
        return scripted_teacher(request, hit)

    with scripted_endpoint(script, monkeypatch) as stub:
        resources, instance = build_resources(), dg.DagsterInstance.ephemeral()
        assert resources["teacher"].max_failure_share == 0.25
        register_seed_shards(instance)
        dg.materialize(ASSETS, selection=[sources.trivia_seeds.key, sources.base_model.key], resources=resources,
                       instance=instance)
        questions = table(state, "trivia_seeds")
        before = stub.hits
        result = dg.materialize(ASSETS, selection=[h.bogus_questions.key], partition_key=SHARD, resources=resources,
                                instance=instance, raise_on_error=False)
        asked = stub.requests[before:]
        assert not result.success
        message = result.get_step_failure_events()[0].event_specific_data.error.to_string()
        first = len({_user(r) for r in asked})  # the first try asks each question of the shard once
        bad = sorted(_user(r) for r in asked[:first] if "France" not in _user(r))
        assert 0 < len(bad) < first <= len(questions)
        assert sorted(_user(r) for r in asked[first:]) == bad  # the retry asks only the unreadable ones again
        assert "TeacherFailureShareExceeded" in message
        assert f"{len(bad)} of {first} calls ({len(bad) / first:.1%})" in message
        assert "above max_failure_share 25.0%" in message

        calls = TeacherCache(state.teacher_cache).calls()
        assert len(calls) == first  # every answered call is cached...
        assert calls["rejected_reason"].notna().sum() == len(bad)  # ...the unreadable ones as rejected
        assert calls["rejected_reason"].dropna().str.startswith("unparseable: bogus_question must be").all()
