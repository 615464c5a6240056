"""Run profiles: ``tiny`` (tests), ``small`` (the default, CPU), ``full`` (real endpoints, GPUs).

Pick one with ``PHI4_PROFILE``. Any field can be overridden from a TOML file named by
``PHI4_CONFIG`` (a ``[profile]`` table whose keys are the field names below), and a few
common ones from environment variables (``PHI4_BASE_MODEL``, ``PHI4_TEACHER_BASE_URL``,
``PHI4_TEACHER_MODEL``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..core.hardware import DEVICES
from ..models.engine import BACKENDS
from ..training.settings import LAUNCHERS
from ..training.mix import BALANCES

log = logging.getLogger(__name__)

TINY_MODEL = "tiny-random-llama"
EMBEDDED_GGUF = "smollm2-135m-instruct-gguf"


# The embedded 135M teacher cannot write bogus questions (0 usable of 8 measured) or
# reference answers reliably: rules by default there. A capable endpoint: teacher everywhere.
# The judge: the teacher, with the rules judge replacing verdicts it cannot read (measured: most).
# Who writes each teacher task on small, from what the embedded 135M teacher was measured to give
# (fresh-clone small runs): answer checks: of 550 teacher grades, 323 unparseable and every
# parseable one "False", so the key match and the rules decided every grade; refusals: 0 of 144
# accepted; judge verdicts: 0 of 80 readable. Those tasks cost ~12 minutes of a cold run and
# changed nothing, so small gives them to the rules. The teacher still writes the SFT chat
# responses, the benign answers and the judge's "teacher" candidates, and a capable endpoint is
# one switch away (``generators``, or TEACHER_EVERYWHERE).
SMALL_GENERATORS = {"answer_check": "rules", "reference_answer": "rules", "bogus_question": "rules",
                    "refusal": "rules", "safety_refusal": "rules", "judge": "rules",
                    # SimpleQA grading: a 135M model cannot grade; a capable endpoint uses the LLM grader.
                    "eval_grade": "rules"}
TEACHER_EVERYWHERE = {task: "teacher" for task in SMALL_GENERATORS}
# The tests' profile runs the scripted teacher through both paths: the teacher for these tasks,
# the rules for the others (each task's other path has its own test).
TINY_GENERATORS = {**SMALL_GENERATORS, "answer_check": "teacher", "refusal": "teacher", "judge": "teacher"}


@dataclass(frozen=True)
class Profile:
    name: str
    # Policy / base model: TINY_MODEL, EMBEDDED_GGUF, or a local directory / hub id.
    base_model: str = EMBEDDED_GGUF
    # Rows kept per source table (None keeps every row): keeps the tiny profile tiny.
    source_limit: int | None = None
    # Seeded generator sizes for math problems (training pool and held-out split).
    math_train: int = 320
    math_eval: int = 120
    math_seed: int = 20241216
    # Teacher endpoint: None starts the embedded server over ``base_model``.
    teacher_base_url: str | None = None
    teacher_model: str | None = None
    teacher_temperature: float = 0.7
    teacher_max_tokens: int = 256
    # Requests in flight at once. The embedded server on 2 cores: 16 gives 1.55x the calls/s of 8
    # (32: 1.60x) on the SFT chat prompts (bench/teacher_throughput.py, BENCHMARKS.md).
    teacher_max_concurrency: int = 16
    teacher_timeout_s: float = 120.0
    teacher_max_retries: int = 4
    teacher_structured_outputs: bool = False
    teacher_max_tokens_param: str = "auto"  # max_completion_tokens for api.openai.com, else max_tokens
    # The embedded teacher's server (no teacher_base_url): "batched" (teacher.batched_server, over the
    # pipeline's decode loop) or "transformers" (transformers serve --continuous-batching). Batched
    # gave 1.27x the completion tokens/s at 16 concurrent requests on 2 cores and the same greedy
    # answers in fp32 (bench/teacher_servers.py, BENCHMARKS.md).
    teacher_embedded_server: str = "batched"
    # Fail a teacher-calling asset, after every answered call is cached, where more than this share
    # of its distinct calls failed or gave a reply the task's parser cannot read. None: never (tiny
    # and small: the embedded 135M teacher fails most parsed tasks and the rules take over, which
    # the assets' metadata counts).
    teacher_max_failure_share: float | None = None
    # Fail a teacher-calling asset where more than this share of its distinct calls got no reply
    # at all after every retry (the endpoint down, the embedded server killed): every profile. A
    # rejected reply has a rules replacement; a missing one leaves a hole (a small run once trained
    # its SFT model on 65 of ~180 rows after the embedded server was OOM-killed, and said nothing).
    teacher_max_error_share: float | None = 0.2
    # Prices for ``phi4 estimate``'s cost line: model name (``teacher_model``; for the embedded
    # teacher, ``base_model``) -> {"input": USD per 1M prompt tokens, "output": USD per 1M
    # completion tokens}. None are built in: prices change, set the ones you pay.
    teacher_prices: dict[str, dict[str, float]] = field(default_factory=dict)
    # The full profile refuses to run the embedded 135M teacher and policy unless this says it is intended.
    allow_embedded_teacher: bool = False
    # Where bubblewrap cannot run, judge untrusted code with the sandbox's in-process audit hook
    # alone (warned once) rather than refuse (pts/sandbox.py). Off on `full`.
    sandbox_allow_fallback: bool = True
    # Where the policy samples and is evaluated in-process: auto (a GPU where torch sees one, else
    # the CPU), cpu, or cuda (an error without a GPU). Training places itself (TRL / accelerate).
    device: str = "auto"
    # What samples from the policy (answer samples, PTS, mix and judge candidates): "transformers"
    # in-process, or "vllm": a vLLM server over the model directory, launched with ``vllm_command``
    # ({model_dir}, {port} filled in) unless ``vllm_endpoints`` names one already serving that
    # model asset's directory (asset name -> base URL). models.vllm_backend says why and how.
    policy_backend: str = "transformers"
    vllm_command: str = ("vllm serve {model_dir} --served-model-name {model_dir} --host 127.0.0.1 --port {port} "
                         "--enable-prefix-caching --seed 0")
    vllm_endpoints: dict[str, str] = field(default_factory=dict)
    vllm_startup_timeout_s: float = 900.0
    # Local data files in the project's JSONL schemas (None: the shipped files under data/).
    data_files: dict[str, str] = field(default_factory=dict)
    # Hallucination mitigation (report App. A.1).
    hallucination_seeds: int | None = 128  # trivia seeds used (None: all)
    shard_size: int = 64  # seed questions per partition of the generation assets
    answer_samples: int = 8  # policy samples per question
    # A DPO stage's A.1 pairs treat a question the base model got right at least once as known,
    # even where the stage's own model now declines it every time (hallucination.decision).
    a1_known_from_base: bool = False
    answer_temperature: float = 0.8
    answer_max_tokens: int = 48
    usually_right: float = 0.5  # p_correct at or above this: the policy is "usually right"
    bogus_min_quality: int = 3  # 1-5; bogus questions rated below are dropped
    dpo_tokens: int = 5  # tokens kept per side of a hallucination DPO pair
    max_failure_share: float = 0.5  # teacher replies that fail to parse, above which a check fails
    # Who writes each hallucination task: "teacher" or "rules" (rules also replace rejected teacher output).
    generators: dict[str, str] = field(default_factory=lambda: dict(SMALL_GENERATORS))
    # SFT mixture: shares of chat responses, hallucination data and safety data.
    sft_mix: dict[str, float] = field(default_factory=lambda: {"chat": 0.45, "hallucination": 0.4, "safety": 0.15})
    sft_chat_prompts: int | None = 96  # chat prompts sent to the teacher for SFT responses (None: all)
    sft_response_tokens: int = 160
    sft_max_decline_share: float = 0.5  # declines (refusals, bogus refusals) at most this share of the
    #                                     hallucination SFT rows (see sft.data.cap_declines)
    # Pivotal Token Search (report Fig. 4).
    # Problems screened per domain (the first ones). Screening math 12, mcq 112, qa 48 with two
    # responses each gives 60 or more PTS pairs, and DPO stage 1 on them undoes SFT's declining
    # (BENCHMARKS.md, demos Q and R): SimpleQA not attempted 31.8% -> 10.6% with 84 pairs, and
    # 44.7% -> 18.8% with 67 pairs even after pairs about whether to answer were left out
    # (pts.pairs.about_declining), with no gain in math or multiple choice. So small keeps the
    # counts its calibration was measured with (demos M, N and S; S had 9 PTS pairs).
    pts_problems: dict[str, int] = field(default_factory=lambda: {"math": 12, "mcq": 12, "qa": 12, "code": 2})
    pts_rollouts: int = 12  # rollouts per p(success) estimate
    # Responses sampled per problem in the window; the distinct ones are searched (their prefixes'
    # estimates are shared: a prefix two responses have in common is estimated once). Two per
    # problem gave more pairs per second than one (the screening is paid once); small keeps one
    # for the reason above.
    pts_responses: int = 1
    pts_max_new_tokens: dict[str, int] = field(default_factory=lambda: {"math": 48, "mcq": 12, "qa": 24,
                                                                        "code": 128})
    pts_temperature: float = 0.7
    pts_gap: float = 0.2  # the report's p_gap
    pts_window: tuple[float, float] = (0.2, 0.8)  # only problems with p(success) in this range are searched
    pts_significance_z: float = 1.96  # two-proportion z a pivot must also pass (0: off)
    pts_min_partner_rollouts: int = 2  # rollouts a PTS partner token needs to show its effect
    pts_mix_share: float = 0.012  # unknown + safety pairs in DPO stage 1 (report: 3,000 of ~250k)
    # Judge-guided DPO (report App. A.2). Candidate prompts per kind: open chat prompts, safety
    # prompts (harmful ones and their benign look-alikes), and keyed questions (trivia, math,
    # multiple choice, in equal parts) whose accuracy an oracle can check.
    judge_prompts: dict[str, int] = field(default_factory=lambda: {"chat": 24, "safety": 12, "keyed": 24})
    # Who answers: "teacher" (the configured teacher model), a model asset (sft_model, dpo1_model,
    # base_model), or any other name: a model at the teacher's endpoint (e.g. gpt-4-turbo).
    judge_sources: list[str] = field(default_factory=lambda: ["teacher", "sft_model", "dpo1_model"])
    judge_response_tokens: int = 128
    judge_verdict_tokens: int = 192
    # Pairs sent to the teacher judge (None: all); the rest are rated by the rules judge. On small
    # the embedded 135M judge serves judge prompts (~600 tokens) at ~0.1 calls/s (measured), so
    # it judges a sample, enough to measure its parse failures, order consistency and agreement.
    judge_teacher_pairs: int | None = 40
    judge_oracle_anchored: bool = True  # accuracy from the oracle where a key exists
    judge_subset_ratio: dict[str, float] = field(default_factory=lambda: {"accuracy": 2.0, "overall": 1.0})
    judge_min_accuracy_margin: float = 1.0
    judge_min_overall_margin: float = 0.5
    judge_keep_inconsistent: bool = False  # keep pairs whose verdict flips with the order shown
    judge_mix_share: float = 0.052  # unknown + safety pairs in DPO stage 2 (report: 43,842 of ~842k)
    mix_floor: int = 24  # at least this many unknown + safety pairs per DPO stage (training.mix)
    # How a stage's mix is drawn from its pool: each kind in turn, each direction in turn (answer
    # what it knows, decline what it does not, refuse harmful, answer benign), or in the pool's
    # proportions (training.mix.pick; the default is the one measured to keep the report's
    # direction on small: BENCHMARKS.md).
    mix_balance: str = "kinds"
    # Teacher tokens the seed generation schedule may spend per tick (estimated before running).
    schedule_token_budget: int = 200_000
    # Evaluation: items kept per benchmark of eval_sets (None: all), greedy decoding.
    eval_limits: dict[str, int | None] = field(default_factory=lambda: {
        "simpleqa": None, "mcq": 60, "math": 60, "code": 20, "safety": None})
    # Prompts per greedy batch (models.decode). 64 decodes 1.42x the useful tokens/s of 16 on 2 cores in
    # bf16 (bench/eval_generation.py, BENCHMARKS.md); in bf16 the batch changes some texts late
    # (padding changes rounding), so grades can move with it. fp32 is the same at any batch size.
    eval_batch_size: int = 64
    eval_max_new_tokens: dict[str, int] = field(default_factory=dict)  # per benchmark (empty: the runner's)
    # Where the model assets train: "inprocess" (TRL in the asset's process) or "accelerate":
    # ``accelerate launch --num_processes train_processes [--config_file accelerate_config_file]``
    # through Dagster Pipes (DDP; DeepSpeed or FSDP from the config file). training.launch says how.
    train_launcher: str = "inprocess"
    train_processes: int = 2
    accelerate_config_file: str | None = None
    # Training knobs (phi4_assets.training.common.TrainSettings fields) per stage.
    # padding_free (TRL's): a batch's sequences end to end in one row, no padding computed. On the
    # small SFT mixture's lengths it trained 1.5x the tokens/s of padded batches (bench/train_throughput.py
    # --data mixture, BENCHMARKS.md), with the same losses in fp32 (tests/test_training.py).
    sft_train: dict = field(default_factory=lambda: {"learning_rate": 3e-5, "num_train_epochs": 1.0,
                                                     "per_device_train_batch_size": 8, "padding_free": True})
    # The small stages have a few dozen pairs: a few epochs at a modest rate, or DPO does nothing.
    # precompute_ref_log_probs: the reference's log-probabilities computed once, not at every step
    # of every epoch (the same losses in fp32: tests/test_training.py). length_buckets: batches of
    # pairs of similar length (a 5-token answer is not padded to a 300-token response:
    # training.batching; 1.56x the tokens/s of random batches on mixed lengths, BENCHMARKS.md).
    dpo_train: dict = field(default_factory=lambda: {"learning_rate": 5e-6, "num_train_epochs": 3.0,
                                                     "per_device_train_batch_size": 4, "beta": 0.1,
                                                     "precompute_ref_log_probs": True, "length_buckets": True})
    # Stage 2 trains on full responses (~100-300 tokens a pair): fewer epochs than stage 1.
    dpo2_train: dict = field(default_factory=lambda: {"learning_rate": 5e-6, "num_train_epochs": 2.0,
                                                      "per_device_train_batch_size": 4, "beta": 0.1,
                                                      "max_length": 320, "precompute_ref_log_probs": True,
                                                      "length_buckets": True})

    def replace(self, **changes) -> "Profile":
        return dataclasses.replace(self, **changes)


PROFILES: dict[str, Profile] = {
    "tiny": Profile(
        name="tiny",
        base_model=TINY_MODEL,
        source_limit=12,
        math_train=24,
        math_eval=12,
        teacher_max_tokens=32,
        teacher_max_concurrency=4,
        teacher_timeout_s=30.0,
        teacher_max_retries=1,
        hallucination_seeds=12,
        shard_size=6,
        answer_samples=2,
        answer_max_tokens=8,
        sft_chat_prompts=6,
        pts_problems={"math": 2, "mcq": 2, "qa": 2, "code": 1},
        pts_rollouts=4,
        pts_responses=2,
        pts_max_new_tokens={"math": 6, "mcq": 4, "qa": 4, "code": 8},
        sft_response_tokens=16,
        sft_train={"max_steps": 2, "per_device_train_batch_size": 2, "save_steps": 1, "max_length": 128,
                   "padding_free": True},
        dpo_train={"max_steps": 2, "per_device_train_batch_size": 2, "save_steps": 1, "max_length": 128},
        judge_prompts={"chat": 2, "safety": 2, "keyed": 3},
        eval_limits={"simpleqa": 4, "mcq": 2, "math": 2, "code": 1, "safety": 2},
        eval_batch_size=4,
        eval_max_new_tokens={"simpleqa": 8, "mcq": 4, "math": 8, "code": 16, "safety": 8},
        judge_response_tokens=12,
        judge_verdict_tokens=64,
        judge_teacher_pairs=None,
        mix_floor=4,
        generators=dict(TINY_GENERATORS),
        dpo2_train={"max_steps": 2, "per_device_train_batch_size": 2, "save_steps": 1, "max_length": 128},
    ),
    "small": Profile(name="small"),
    "full": Profile(name="full", teacher_structured_outputs=True, teacher_max_concurrency=32,
                    teacher_max_failure_share=0.2,
                    sandbox_allow_fallback=False,
                    dpo_train={"learning_rate": 1e-6, "num_train_epochs": 1.0, "per_device_train_batch_size": 8,
                               "beta": 0.1, "precompute_ref_log_probs": True},
                    hallucination_seeds=None, shard_size=256, max_failure_share=0.1,
                    judge_prompts={"chat": 2000, "safety": 200, "keyed": 600}, judge_response_tokens=1024,
                    judge_verdict_tokens=1024, judge_oracle_anchored=False, judge_teacher_pairs=None,
                    eval_limits={"simpleqa": None, "mcq": None, "math": None, "code": None, "safety": None},
                    judge_sources=["teacher", "sft_model", "dpo1_model"],
                    dpo2_train={"learning_rate": 1e-6, "num_train_epochs": 1.0, "per_device_train_batch_size": 8,
                                "beta": 0.1, "precompute_ref_log_probs": True, "max_length": 2048},
                    generators=dict(TEACHER_EVERYWHERE)),
}


def teacher_base_url_from_env() -> str | None:
    """The teacher endpoint from the environment: ``PHI4_TEACHER_BASE_URL``, else the openai
    client's own ``OPENAI_BASE_URL``. Where both are set and differ, the first wins, and a warning
    says so."""
    ours, openai_url = os.environ.get("PHI4_TEACHER_BASE_URL"), os.environ.get("OPENAI_BASE_URL")
    if ours and openai_url and ours.rstrip("/") != openai_url.rstrip("/"):
        log.warning(f"PHI4_TEACHER_BASE_URL ({ours}) wins over OPENAI_BASE_URL ({openai_url}) for the teacher")
    return ours or openai_url or None


def load_profile(name: str | None = None, config_file: str | os.PathLike | None = None) -> Profile:
    """The profile named by ``name`` (default ``$PHI4_PROFILE``, else ``small``), with
    overrides from ``config_file`` (default ``$PHI4_CONFIG``) and the environment."""
    name = name or os.environ.get("PHI4_PROFILE") or "small"
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)} (PHI4_PROFILE)")
    profile = PROFILES[name]
    config_file = config_file or os.environ.get("PHI4_CONFIG")
    if config_file:
        profile = profile.replace(**_read_overrides(Path(config_file)))
    env = {
        "base_model": os.environ.get("PHI4_BASE_MODEL"),
        "teacher_base_url": teacher_base_url_from_env(),
        "teacher_model": os.environ.get("PHI4_TEACHER_MODEL"),
    }
    profile = profile.replace(**{k: v for k, v in env.items() if v})
    if profile.teacher_base_url and not (config_file and "generators" in _read_overrides(Path(config_file))):
        # A configured endpoint is presumed capable: the teacher writes everything.
        profile = profile.replace(generators=dict(TEACHER_EVERYWHERE))
    bad = {k: v for k, v in profile.generators.items() if v not in ("teacher", "rules") or k not in SMALL_GENERATORS}
    if bad:
        raise ValueError(f"generators: unknown task or generator {bad}; tasks {', '.join(SMALL_GENERATORS)}, "
                         "generators teacher | rules")
    problems = profile_problems(profile)
    if problems:
        where = f" ({config_file})" if config_file else ""
        raise ValueError(f"profile {profile.name}{where} is not valid:\n" + "\n".join(f"  {p}" for p in problems))
    if profile.name == "full" and not profile.allow_embedded_teacher and (
            not profile.teacher_base_url or profile.base_model == EMBEDDED_GGUF):
        missing = [what for what, ok in (("a teacher endpoint (PHI4_TEACHER_BASE_URL or OPENAI_BASE_URL)",
                                          profile.teacher_base_url),
                                         ("a base model (PHI4_BASE_MODEL)", profile.base_model != EMBEDDED_GGUF))
                   if not ok]
        raise ValueError(f"the full profile needs {' and '.join(missing)}: at full sizes the embedded 135M teacher "
                         "and policy would run for days to no purpose. Set them, or set allow_embedded_teacher = "
                         "true in the config file if that is what you want.")
    return profile


# -- validation --------------------------------------------------------------------------------

def _at_least(low: float) -> tuple[Callable[[float], bool], str]:
    return (lambda v: v >= low), f">= {low}"


def _between(low: float, high: float, high_open: bool = False) -> tuple[Callable[[float], bool], str]:
    return ((lambda v: low <= v < high), f"in [{low}, {high})") if high_open else \
        ((lambda v: low <= v <= high), f"in [{low}, {high}]")


# Ranges of the numeric fields (a dict field: of each of its values); None always passes.
RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    **{f: _at_least(1) for f in ("source_limit", "math_train", "math_eval", "teacher_max_tokens",
                                 "teacher_max_concurrency", "hallucination_seeds", "shard_size", "answer_samples",
                                 "answer_max_tokens", "dpo_tokens", "sft_chat_prompts", "sft_response_tokens",
                                 "pts_rollouts", "pts_responses", "pts_max_new_tokens", "pts_min_partner_rollouts",
                                 "judge_response_tokens", "judge_verdict_tokens", "judge_teacher_pairs",
                                 "eval_batch_size", "eval_max_new_tokens", "train_processes")},
    **{f: _at_least(0) for f in ("teacher_max_retries", "pts_problems", "judge_prompts", "judge_subset_ratio",
                                 "judge_min_accuracy_margin", "judge_min_overall_margin", "mix_floor",
                                 "schedule_token_budget", "pts_significance_z", "sft_mix", "eval_limits")},
    **{f: _between(0, 2) for f in ("teacher_temperature", "answer_temperature", "pts_temperature")},
    **{f: _between(0, 1) for f in ("usually_right", "max_failure_share", "teacher_max_failure_share",
                                   "teacher_max_error_share",
                                   "sft_max_decline_share", "pts_gap", "pts_window")},
    **{f: _between(0, 1, high_open=True) for f in ("pts_mix_share", "judge_mix_share")},
    "teacher_timeout_s": ((lambda v: v > 0), "> 0"),
    "vllm_startup_timeout_s": ((lambda v: v > 0), "> 0"),
    "bogus_min_quality": _between(1, 5),
}
CHOICES = {"teacher_max_tokens_param": ("auto", "max_tokens", "max_completion_tokens"), "device": DEVICES,
           "teacher_embedded_server": ("batched", "transformers"),
           "mix_balance": BALANCES, "policy_backend": BACKENDS, "train_launcher": LAUNCHERS}
PRICE_KEYS = ("input", "output")  # teacher_prices: USD per 1M prompt / completion tokens
TRAIN_FIELDS = ("sft_train", "dpo_train", "dpo2_train")


def _type_problems(path: str, hint: Any, value: Any, strict: bool = True) -> list[str]:
    from pydantic import ConfigDict, TypeAdapter, ValidationError

    if hint is None:
        return []
    if isinstance(value, list) and getattr(hint, "__origin__", None) is tuple:
        value = tuple(value)  # TOML has arrays, not tuples
    try:
        adapter = TypeAdapter(hint, config=ConfigDict(strict=strict))
    except Exception:  # a type pydantic cannot check (TRL's own classes): TRL checks it when it trains
        return []
    try:
        adapter.validate_python(value)
    except ValidationError as e:
        return [f"{'.'.join([path, *map(str, err['loc'])])}: {err['msg']} (got {err['input']!r})" for err in e.errors()]
    return []


def profile_problems(profile: Profile) -> list[str]:
    """Every problem of ``profile``, each with the path of its field (``dpo_train.learnin_rate``):
    types, ranges, choices, and the keys of the training settings (``TrainSettings`` fields, or
    fields of the stage's TRL config class, checked against it). Empty when the profile is valid."""
    import typing

    from ..training.settings import OURS, TrainSettings, trl_hint, unknown_setting

    hints = typing.get_type_hints(Profile)
    train_hints = typing.get_type_hints(TrainSettings)
    problems = []
    for field_ in dataclasses.fields(Profile):
        name, value = field_.name, getattr(profile, field_.name)
        if name in TRAIN_FIELDS:
            if not isinstance(value, dict):
                problems.append(f"{name}: should be a table of training settings (got {value!r})")
                continue
            for key, setting in value.items():
                if key in OURS:
                    problems += _type_problems(f"{name}.{key}", train_hints[key], setting)
                elif (unknown := unknown_setting(name, key)) is not None:
                    problems.append(unknown)
                else:  # a field of the stage's TRL config: TRL's own type, checked leniently
                    problems += _type_problems(f"{name}.{key}", trl_hint(name, key), setting, strict=False)
            continue
        found = _type_problems(name, hints[name], value)
        problems += found
        if name == "teacher_prices" and isinstance(value, dict):  # also next to a type problem of one entry
            problems += _price_problems(value)
        if found or value is None:
            continue
        if name in CHOICES and value not in CHOICES[name]:
            problems.append(f"{name}: should be one of {', '.join(CHOICES[name])} (got {value!r})")
        if name in RANGES:
            check, says = RANGES[name]
            if isinstance(value, dict):
                items = value.items()
            else:
                items = enumerate(value) if isinstance(value, (tuple, list)) else [(None, value)]
            for key, v in items:
                if v is not None and not isinstance(v, bool) and isinstance(v, (int, float)) and not check(v):
                    problems.append(f"{name}{'' if key is None else f'.{key}'}: should be {says} (got {v!r})")
    return problems


def _price_problems(prices: dict[str, dict[str, float]]) -> list[str]:
    """``teacher_prices``: each model's table has exactly ``input`` and ``output``, both >= 0."""
    problems = []
    for model, price in prices.items():
        if not isinstance(price, dict):
            continue  # a type problem, said already
        where = f"teacher_prices.{model}"
        problems += [f"{where}.{key}: unknown price; known: {', '.join(PRICE_KEYS)} (USD per 1M tokens)"
                     for key in price if key not in PRICE_KEYS]
        problems += [f"{where}.{key}: should be >= 0 (got {price[key]!r})" for key in PRICE_KEYS
                     if isinstance(price.get(key), (int, float)) and not isinstance(price[key], bool)
                     and not price[key] >= 0]
        missing = [key for key in PRICE_KEYS if key not in price]
        if missing:
            problems.append(f"{where}: missing {' and '.join(missing)} (USD per 1M tokens)")
    return problems


def _read_overrides(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            table = tomllib.load(f).get("profile", {})
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: config file not found (PHI4_CONFIG)") from None
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from None
    known = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ValueError(f"{path}: [profile] has unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return table
