"""phi4-posttrain: the Phi-4 post-training recipe as Dagster software-defined assets."""

__version__ = "0.1.0"
