"""phi4-posttrain: the Phi-4 post-training recipe as Dagster software-defined assets."""

import os as _os

# torch's OpenMP threads spin-wait by default. The embedded teacher server and the policy process
# share the cores in every teacher-using stage, and spinning threads steal each other's cycles:
# on 2 cores, 16 rollouts x 24 tokens beside a busy process took 61.7 s with the default policy and
# 10.0 s with PASSIVE. It must be set before torch loads; an explicit setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
