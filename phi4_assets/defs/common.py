"""Helpers the asset modules share: the teacher call wrapper and metadata builders."""

from collections import Counter
from collections.abc import Callable

import dagster as dg
import pandas as pd

from ..models.ref import ModelRef
from ..core.reporting import counts_table, markdown_table
from ..teacher import ChatRequest
from ..teacher.batch import TeacherBatch, TeacherStats, text_validator
from ..teacher.resource import TeacherResource


# Retries where they are cheap and safe (Dagster re-runs the step in the same run):
# - an asset that calls the teacher: every answered call is in the cache, so a retry repeats only
#   the calls that failed or were in flight (a dropped connection, a restarted server, a DuckDB
#   lock held past its timeout); two tries, 30 s then 60 s apart, ride out a short outage;
# - a training asset: it resumes from its last checkpoint in the work directory, so a retry after a
#   transient failure repeats at most one checkpoint interval; one try.
# Policy sampling, PTS and evaluation are not retried: they are deterministic, so a failure there
# is a bug or a resource limit that a retry would only repeat.
TEACHER_RETRY = dg.RetryPolicy(max_retries=2, delay=30, backoff=dg.Backoff.EXPONENTIAL)
TRAINING_RETRY = dg.RetryPolicy(max_retries=1, delay=10)


def ask_teacher(context: dg.AssetExecutionContext, teacher: TeacherResource, requests: list[ChatRequest],
                base_model: ModelRef, validate: Callable[[str | None], str | None] | None = None) -> TeacherBatch:
    """Send requests through the teacher; the embedded server (if used) serves ``base_model``.

    ``validate(text) -> reason | None`` is the task's own parser (e.g.
    ``hallucination.prompts.answer_check_problem``): a reply it cannot read stays in the teacher
    cache with ``rejected_reason`` and is asked again by the next run instead of being a cache hit.
    It checks the form only; content judgements stay with the asset."""
    if not requests:
        return TeacherBatch(replies=[], stats=TeacherStats(), model=teacher.model_identity(base_model.path))
    return teacher.complete(requests, serve_model=base_model.path, logger=context.log,
                            validate=text_validator(validate) if validate is not None else None)


def table_metadata(frame: pd.DataFrame, preview_columns: list[str] | None = None, **extra) -> dict:
    metadata = {"dagster/row_count": len(frame),
                "preview": dg.MetadataValue.md(markdown_table(frame, preview_columns, limit=8))}
    for key, value in extra.items():
        if isinstance(value, (dict, Counter)):
            value = dg.MetadataValue.md(counts_table(dict(value), key))
        metadata[key] = value
    return metadata


def shares(values) -> dict[str, float]:
    counts = Counter(values)
    total = sum(counts.values()) or 1
    return {str(k): round(v / total, 3) for k, v in counts.most_common()}


def column_lineage(columns: dict[str, list[tuple[str, str]]]) -> dict:
    """``dagster/column_lineage`` metadata: each column of this table -> (asset, column) it came from."""
    return {"dagster/column_lineage": dg.TableColumnLineage(deps_by_column={
        column: [dg.TableColumnDep(asset_key=dg.AssetKey(asset), column_name=source) for asset, source in deps]
        for column, deps in columns.items()})}
