"""Reaction generation (REACT): the generator contract, the models, generation, online mode,
sampling sweep, baselines, deployment and inference on raw clips."""
