"""Where a step that runs the policy or trains it asks to be placed: the op tag
``dagster-k8s/config`` that ``dagster_k8s.k8s_job_executor`` applies to the step's own pod.

The steps: every model asset (training), and every asset that samples or evaluates a policy
(``policy_answer_samples``, ``pts_difficulty``, ``pivotal_tokens``, the mix pairs,
``judge_candidates``, ``stage_evaluations``). Everything else (tables, teacher calls) needs no
accelerator.

Off unless the deployment says so: ``PHI4_K8S_STEP_GPUS=<n>`` in the code location's
environment (the Helm chart's user deployment ``env``) gives those steps ``nvidia.com/gpu: n``,
and ``PHI4_K8S_GPU_NODE_SELECTOR=key=value`` a node selector. On one machine, in Docker, or with
the default executor the tag is read by nothing; on a CPU-only cluster a GPU limit would leave
the pods unschedulable, hence the switch. Read when the definitions load (op tags are part of
the definitions).
"""

from __future__ import annotations

import os

GPUS_ENV = "PHI4_K8S_STEP_GPUS"
NODE_SELECTOR_ENV = "PHI4_K8S_GPU_NODE_SELECTOR"


def policy_step_tags(environ: dict[str, str] | None = None) -> dict:
    """The op tags of a step that runs the policy (empty unless ``PHI4_K8S_STEP_GPUS`` > 0)."""
    env = os.environ if environ is None else environ
    raw = env.get(GPUS_ENV, "").strip()
    try:
        gpus = int(raw or 0)
    except ValueError:
        raise ValueError(f"{GPUS_ENV} must be a whole number of GPUs per step (got {raw!r})") from None
    if gpus <= 0:
        return {}
    config: dict = {"container_config": {"resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}}
    selector = env.get(NODE_SELECTOR_ENV, "").strip()
    if selector:
        key, sep, value = selector.partition("=")
        if not sep or not key:
            raise ValueError(f"{NODE_SELECTOR_ENV} must be key=value (got {selector!r})")
        config["pod_spec_config"] = {"node_selector": {key: value}}
    return {"dagster-k8s/config": config}


POLICY_STEP_TAGS = policy_step_tags()
