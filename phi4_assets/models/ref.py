"""A model asset's stored value: one row that says where the directory is and what made it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from ..core.warehouse import table_schema

# What every model asset stores in the warehouse (one row).
MODEL_REF_SCHEMA = table_schema(
    path=("VARCHAR", "the model directory (save_pretrained / from_pretrained)"),
    name=("VARCHAR", "the asset that made it"),
    base_model=("VARCHAR", "where its weights came from"),
    data_version=("VARCHAR", "a hash of everything that determined the weights"),
    metrics=("VARCHAR", "training metrics, JSON"),
)


@dataclass(frozen=True)
class ModelRef:
    path: str  # a Hugging Face model directory (save_pretrained / from_pretrained)
    name: str  # the asset that made it
    base_model: str  # where its weights came from (a model id, a GGUF file, a parent directory)
    data_version: str  # a hash of everything that determined the weights
    metrics: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        row = asdict(self)
        row["metrics"] = json.dumps(self.metrics, sort_keys=True)
        return pd.DataFrame([row])

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> "ModelRef":
        if len(frame) != 1:
            raise ValueError(f"a model asset stores exactly one row, found {len(frame)}")
        row = frame.iloc[0].to_dict()
        metrics = row.get("metrics") or "{}"
        ref = cls(path=row["path"], name=row["name"], base_model=row["base_model"],
                  data_version=row["data_version"], metrics=json.loads(metrics))
        if not Path(ref.path).is_dir():
            raise FileNotFoundError(f"model directory {ref.path} (asset {ref.name}) is missing: re-materialize it")
        return ref
