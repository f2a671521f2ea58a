"""The classic speech-emotion model as a first-class ``ser`` model (``model.encoder=egemaps_lr``):
the 88 eGeMAPSv02 functionals of each utterance (openSMILE), standardised, into a multinomial
logistic regression fitted on the training speakers (the same model as the report's classic
baseline, :mod:`react.ser.baseline`).

It trains in seconds (``react train --config configs/ser_classic.yaml``: fit, checkpoint, test
report), and as an ``nn.Module`` mapping waveforms to logits it goes through everything a network
does: ``mode=test``, k-fold, ``react.ser.predict`` (files, ``--stream``, ``--mic``, ``--enrol``).
Under the speaker-adapted protocol (``model.normalization=speaker``) each utterance's functionals
are first z-scored by the mean and std of its speaker's enrolment functionals; ``population`` (the
inductive default) uses the training speakers' standardisation only. openSMILE is not a tensor
program, so an ONNX export holds the part after it: functionals (and enrolment statistics) to
probabilities (:func:`react.ser.export.export_onnx`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

N_FUNCTIONALS = 88
ENCODER = "egemaps_lr"
NORMALIZATIONS = ("population", "speaker")


class ClassicSER(nn.Module):
    """eGeMAPS functionals -> [speaker z-score] -> training standardisation -> linear logits."""

    def __init__(self, n_classes: int, sample_rate: int, normalization: str = "population"):
        super().__init__()
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"model.normalization={normalization}: the classic model takes "
                             f"{' or '.join(NORMALIZATIONS)}")
        self.sample_rate = sample_rate
        self.speaker_norm = normalization == "speaker"
        self.register_buffer("mean", torch.zeros(N_FUNCTIONALS, dtype=torch.float64))
        self.register_buffer("scale", torch.ones(N_FUNCTIONALS, dtype=torch.float64))
        self.linear = nn.Linear(N_FUNCTIONALS, n_classes).double()

    @torch.no_grad()
    def raw_features(self, wave: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) waves -> the functionals of each utterance's valid samples as one "frame"
        (B, 1, 88), and weights of ones: a speaker's :func:`react.ser.inference.speaker_norm` over
        them is the mean and std of its utterances' functionals."""
        from features.audio import egemaps_functionals

        rows = [egemaps_functionals(w[m].float().cpu().numpy(), self.sample_rate) for w, m in zip(wave, mask)]
        feats = torch.from_numpy(np.nan_to_num(np.stack(rows).astype(np.float64))).to(wave.device)
        return feats.unsqueeze(1), torch.ones_like(feats.unsqueeze(1))

    def head(self, functionals: torch.Tensor, norm: torch.Tensor | None = None) -> torch.Tensor:
        """Functionals (B, 88) [and speaker statistics (B, 2, 88)] -> logits (B, C)."""
        x = functionals.double()
        if norm is not None:
            x = (x - norm[:, 0].double()) / norm[:, 1].double()
        return self.linear((x - self.mean) / self.scale)

    def forward(self, wave: torch.Tensor, mask: torch.Tensor | None = None,
                norm: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if mask is None:
            mask = torch.ones_like(wave, dtype=torch.bool)
        if (norm is not None) != self.speaker_norm:
            raise ValueError("a normalization=speaker model needs norm (its speaker's enrolment statistics), "
                             "any other takes none")
        return {"logits": self.head(self.raw_features(wave, mask)[0][:, 0], norm).float()}

    @torch.no_grad()
    def fit(self, x: np.ndarray, y: np.ndarray, seed: int = 0) -> ClassicSER:
        """Fit the standardisation and the logistic regression on functionals ``x`` (N, 88) (already
        z-scored per speaker for a speaker-adapted model) and labels ``y``; a class without
        training data gets a logit of -1e4."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        if len(np.unique(y)) < 2:
            raise ValueError("the classic model needs at least two emotions in the training split")
        x = np.nan_to_num(np.asarray(x, dtype=np.float64))
        scaler = StandardScaler().fit(x)
        lr = LogisticRegression(max_iter=5000, random_state=seed).fit(scaler.transform(x), y)
        coef, bias = lr.coef_, lr.intercept_
        if coef.shape[0] == 1:  # two classes: sklearn keeps one row, softmax([-d/2, d/2]) = sigmoid(d)
            coef, bias = np.concatenate([-coef, coef]) / 2, np.concatenate([-bias, bias]) / 2
        weight = np.zeros((self.linear.out_features, N_FUNCTIONALS))
        intercept = np.full(self.linear.out_features, -1e4)
        weight[lr.classes_], intercept[lr.classes_] = coef, bias
        self.mean.copy_(torch.from_numpy(scaler.mean_))
        self.scale.copy_(torch.from_numpy(scaler.scale_))
        self.linear.weight.copy_(torch.from_numpy(weight))
        self.linear.bias.copy_(torch.from_numpy(intercept))
        return self


def train_classic(cfg: Any) -> dict:
    """``mode=train`` of a classic model: fit (inside the task's ``build_model``), save the
    checkpoint ``<out_dir>/checkpoints/best``, test; returns the test summary (also written to
    ``test_results.json``)."""
    from omegaconf import OmegaConf

    from react.config import absolute_paths
    from react.engine import checkpoint as ckpt
    from react.engine.trainer import claim_run_dir
    from react.tasks import RunPaths, build_task
    from react.utils.io import save_json
    from react.utils.logging import setup_logging

    absolute_paths(cfg)
    claim_run_dir(cfg, True)
    paths = RunPaths(Path(cfg.out_dir))
    log = setup_logging(paths.run_dir, main=True)
    task = build_task(cfg, paths)
    model = task.build_model().eval()
    target = ckpt.checkpoint_dir(cfg.out_dir, "best")
    ckpt.stage(target, {"model": model.state_dict(), "epoch": 0,
                        "config": OmegaConf.to_container(cfg, resolve=True)})
    ckpt.publish(target)
    log.info("classic model fitted on %d training utterances: %s", len(task.splits["train"]), target)
    summary = task.test(model, None)
    save_json(summary, paths.run_dir / "test_results.json")
    return summary


def run(cfg: Any) -> dict:
    """:func:`react.engine.run` for the ``ser`` task, except that training a classic model is a fit
    (:func:`train_classic`); its ``mode=test`` goes through the engine like any checkpoint."""
    if cfg.mode == "train" and cfg.model.encoder == ENCODER:
        return train_classic(cfg)
    from react.engine import run as engine_run

    return engine_run(cfg)
