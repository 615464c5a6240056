"""The helper every model asset uses: train into a staged directory, resumably, and return
the model reference with its metadata; and ``dpo_model``, which makes the three DPO model assets
(``dpo1_model`` in ``pts.py``, ``dpo2_model`` and ``dpo2_only_model`` in ``judge.py``)."""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import pandas as pd

from ..core.ids import content_hash
from ..models.ref import MODEL_REF_SCHEMA, ModelRef
from .resources import ModelStoreResource, ProjectResource
from ..training.common import clear_work_dir, write_training_record
from ..training.settings import TrainSettings, split_settings
from ..training.dpo import train_dpo
from ..training.launch import accelerate_command, launch_identity, read_result, write_job
from ..training.sft import train_sft
from ..core.warehouse import schema_metadata
from .common import TRAINING_RETRY
from .placement import POLICY_STEP_TAGS

TRAIN = dict(pool="train", kinds={"pytorch", "huggingface"}, metadata=schema_metadata(MODEL_REF_SCHEMA),
             retry_policy=TRAINING_RETRY, op_tags=POLICY_STEP_TAGS)


def retrain_when_data_changes(data_asset: str) -> dg.AutomationCondition:
    """Declarative automation for a model asset: train again when its training data's data
    version changed (new content, not merely a new materialization of the same content), once
    nothing it needs is missing or running. The change is remembered until the model is
    requested or updated, so a tick on which a parent was busy does not lose it, and a model
    trained in the same run as its data is not trained twice. A new parent model alone does not
    retrain it: the stage's data must be rebuilt from that parent first (the PTS and judge data
    are rebuilt by backfill: they sample for minutes and spend teacher tokens)."""
    auto = dg.AutomationCondition
    data_changed = auto.any_deps_match(auto.data_version_changed()).allow(dg.AssetSelection.assets(data_asset))
    pending = data_changed.with_label(f"{data_asset} changed").since(auto.newly_requested() | auto.newly_updated())
    return pending & ~auto.any_deps_missing() & ~auto.any_deps_in_progress() & ~auto.in_progress()


def settings_from(profile_settings: dict, overrides: dict | None = None, stage: str = "dpo_train") -> TrainSettings:
    """The settings of the profile's ``stage`` table (``sft_train``, ``dpo_train``, ``dpo2_train``)
    with a run's ``overrides``: ``TrainSettings`` fields, and any field of the stage's TRL config."""
    return TrainSettings(**split_settings(stage, {**profile_settings, **(overrides or {})}))


def launch_of(profile) -> dict | None:
    """The profile's launcher as part of a model's version (None in process)."""
    return launch_identity(profile.train_launcher, profile.train_processes, profile.accelerate_config_file)


def trainer(context: dg.AssetExecutionContext, profile, kind: str, model_dir: str, data: pd.DataFrame,
            settings: TrainSettings) -> Callable[[Path, Path], dict]:
    """``train(out_dir, work_dir)`` for ``train_model_asset``: TRL in this process, or, with the
    profile's ``train_launcher = "accelerate"``, ``accelerate launch`` on ``train_processes``
    processes through Dagster Pipes (``training.launch``): the main process's progress lines
    arrive in this step's log, and its result is read back from the job folder."""
    if profile.train_launcher == "inprocess":
        rows = data.to_dict(orient="records")
        if kind == "sft":
            return lambda out, work: train_sft(model_dir, rows, out, work, settings, context.log)
        return lambda out, work: train_dpo(model_dir, rows, out, work, settings, context.log)

    def launched(out_dir: Path, work_dir: Path) -> dict:
        job = write_job(Path(work_dir) / "job", kind, model_dir, data, out_dir, work_dir, settings)
        command = accelerate_command(job, profile.train_processes, profile.accelerate_config_file)
        context.log.info(f"launching {kind} on {profile.train_processes} processes: {' '.join(command)}")
        dg.PipesSubprocessClient().run(context=context, command=command)
        return read_result(job.parent)

    return launched


def train_model_asset(context: dg.AssetExecutionContext, model_store: ModelStoreResource, name: str,
                      parent: ModelRef, data: pd.DataFrame, settings: TrainSettings,
                      train: Callable[[Path, Path], dict], launch: dict | None = None) -> dg.Output[pd.DataFrame]:
    """Train ``name`` from ``parent`` on ``data`` unless that exact model exists already.

    The version hashes the parent's version, the data and the settings (and, for a launched job,
    ``launch``: ``training.launch.launch_identity``). Checkpoints live in a
    work directory named by that version, so materializing again after a kill resumes; the
    model directory appears (atomically) only when training completed.
    """
    version = content_hash([parent.data_version, content_hash(data.to_json(orient="records")), settings.as_dict()]
                           + ([launch] if launch else []))
    path = model_store.path(name, version)
    record_file = path / "phi4_training.json"
    if model_store.is_complete(name, version) and record_file.exists():
        import json

        context.log.info(f"{name} {version} already trained at {path}; reusing it")
        record = json.loads(record_file.read_text())
        reused = True
    else:
        work_dir = Path(model_store.root) / ".work" / name / version
        context.log.info(f"training {name} {version} from {parent.path} on {len(data)} rows")
        with model_store.staged(name, version, overwrite=True) as out_dir:
            result = train(out_dir, work_dir)
            record = {"metrics": result["metrics"], "history": result["history"], "settings": settings.as_dict(),
                      "parent": parent.path, "parent_version": parent.data_version}
            write_training_record(out_dir, record)
        clear_work_dir(work_dir)
        reused = False
    metrics = record["metrics"]
    ref = ModelRef(path=str(path), name=name, base_model=parent.path, data_version=version, metrics=metrics)
    metadata = {"path": dg.MetadataValue.path(str(path)), "parent": parent.path, "reused": reused,
                **{k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}}
    curve = path / "loss_curve.png"
    if curve.exists():
        import base64

        metadata["loss_curve"] = dg.MetadataValue.md(
            f"![loss curve](data:image/png;base64,{base64.b64encode(curve.read_bytes()).decode()})")
        metadata["loss_curve_path"] = dg.MetadataValue.path(str(curve))
    return dg.Output(ref.to_frame(), data_version=dg.DataVersion(version), metadata=metadata)


def dpo_stage(context: dg.AssetExecutionContext, model_store: ModelStoreResource, name: str, start: ModelRef,
              pairs: pd.DataFrame, settings: TrainSettings, profile) -> dg.Output[pd.DataFrame]:
    """One DPO stage: from ``start`` (also the reference) on ``pairs`` (prompt, chosen, rejected,
    source; optional exact ``*_token_ids``). Used by ``dpo1_model``, ``dpo2_model`` and
    ``dpo2_only_model``."""
    if pairs.empty:
        raise ValueError(f"{name}: no preference pairs to train on")
    return train_model_asset(context, model_store, name, start, pairs, settings,
                             trainer(context, profile, "dpo", start.path, pairs, settings), launch_of(profile))


def dpo_model(name: str, *, group: str, start: str, pairs: str, settings: str, description: str) -> dg.AssetsDefinition:
    """The DPO model asset ``name``: trained from the model asset ``start`` (also the reference)
    on the pair table ``pairs``, with the profile's training settings ``settings`` (e.g.
    ``dpo_train``); it retrains when the pairs' data changes."""

    @dg.asset(name=name, group_name=group, **TRAIN, code_version="2", description=description,
              ins={"start": dg.AssetIn(start), "pairs": dg.AssetIn(pairs)},
              automation_condition=retrain_when_data_changes(pairs))
    def _dpo_model(context: dg.AssetExecutionContext, project: ProjectResource, model_store: ModelStoreResource,
                   start: pd.DataFrame, pairs: pd.DataFrame) -> dg.Output[pd.DataFrame]:
        profile = project.settings()
        return dpo_stage(context, model_store, name, ModelRef.from_frame(start), pairs,
                         settings_from(getattr(profile, settings), stage=settings), profile)

    return _dpo_model
