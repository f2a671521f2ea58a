"""The training engine: one loop for every task, checkpoints, resume, test mode."""

from react.engine.checkpoint import checkpoint_file
from react.engine.trainer import fit, load_checkpoint_model, run, test

__all__ = ["checkpoint_file", "fit", "load_checkpoint_model", "run", "test"]
