"""The project loads the way its users load it: ``definitions.py`` and the ``dg`` CLI."""

import os
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

from phi4_assets.config.settings import REPO_ROOT

# The asset keys the design names (groups may gain assets, never lose or rename these).
DESIGN_ASSETS = {
    "trivia_seeds", "math_problems", "mcq_questions", "code_problems", "safety_prompts", "chat_prompts", "eval_sets",
    "base_model", "policy_answer_samples", "answer_checks", "reference_answers", "bogus_questions", "refusals",
    "hallucination_sft_data", "hallucination_dpo_pairs", "sft_dataset", "sft_model", "pts_difficulty",
    "pivotal_tokens", "pts_dpo_pairs", "dpo1_model", "judge_candidates", "judge_ratings", "judge_dpo_pairs",
    "dpo2_model", "dpo2_only_model", "stage_evaluations", "ablation_table", "simpleqa_evolution"}


def test_definitions_py_serves_every_asset_with_its_resources():
    defs = runpy.run_path(str(REPO_ROOT / "definitions.py"))["defs"]
    keys = {k.to_user_string() for a in defs.assets for k in a.keys}
    assert DESIGN_ASSETS <= keys
    assert set(defs.resources) == {"io_manager", "model_store", "project", "pts_memo", "teacher"}
    assert {s.name for s in defs.schedules} and {s.name for s in defs.sensors}


def test_the_dg_cli_loads_the_project():
    dg = shutil.which("dg", path=str(Path(sys.executable).parent))
    assert dg, "the dg CLI (dagster-dg-cli) is a project dependency"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "VIRTUAL_ENV": str(Path(sys.executable).parent.parent)}
    done = subprocess.run([dg, "check", "defs"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "All definitions loaded successfully" in done.stdout + done.stderr


def test_retries_where_they_are_cheap_and_nowhere_else():
    """Teacher work resumes from the call cache and training from its checkpoints, so those retry;
    sampling, PTS and evaluation are deterministic and do not (see defs/common.py)."""
    from phi4_assets.defs import load
    from phi4_assets.defs.common import TEACHER_RETRY, TRAINING_RETRY

    policies = {}
    for a in load().assets:
        for key in a.keys:
            policies[key.to_user_string()] = a.op.retry_policy
    teacher_only = {"answer_checks", "reference_answers", "bogus_questions", "refusals", "sft_dataset",
                    "judge_candidates", "judge_ratings"}
    models = {"sft_model", "dpo1_model", "dpo2_model", "dpo2_only_model"}
    assert {k for k, p in policies.items() if p == TEACHER_RETRY} == teacher_only
    assert {k for k, p in policies.items() if p == TRAINING_RETRY} == models
    assert all(policies[k] is None for k in policies.keys() - teacher_only - models)
