"""Training with TRL: SFT and the DPO stage every DPO asset uses (no hand-written loops)."""
