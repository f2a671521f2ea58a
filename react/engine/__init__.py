"""The training engine: one loop for every task, checkpoints, resume, test mode."""

from react.engine.checkpoint import CheckpointError, checkpoint_file
from react.engine.trainer import RunExistsError, TrainingInterrupted, fit, load_checkpoint, run, test

__all__ = ["CheckpointError", "RunExistsError", "TrainingInterrupted", "checkpoint_file", "fit",
           "load_checkpoint", "run", "test"]
