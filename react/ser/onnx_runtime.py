"""The speech-emotion ONNX export (:mod:`react.ser.export`) on onnxruntime, without torch.

The graph's inputs: ``wave`` (batch, samples) float32 mono audio at the model's sample rate (all
samples valid: one file per call), and for a ``normalization=speaker`` model ``norm`` (batch, 2, F):
the speaker's mean and std of each raw frame feature (log-mel bands, then acoustic descriptors),
which ``react ser predict --checkpoint RUN --enrol DIR|FILES --save-norm norm.npy`` computes from
the speaker's enrolment recordings (the speaker-adapted protocol, docs/ser.md). Output ``probs``
(batch, classes). Class names, sample rate, input names and the protocol are in the model's
metadata.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class OnnxSER:
    """An exported speech-emotion model: class names, sample rate and :meth:`probs`."""

    def __init__(self, path: str | os.PathLike):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: ONNX model not found")
        try:
            self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime's own error types (InvalidProtobuf, Fail, ...)
            raise ValueError(f"{path}: not a loadable ONNX model ({str(err).splitlines()[0]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "classes" not in meta or "sample_rate" not in meta:
            raise ValueError(f"{path}: no class names / sample rate in its metadata (export it with "
                             "react ser export)")
        self.path, self.classes, self.sample_rate = path, meta["classes"].split(","), int(meta["sample_rate"])
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.needs_norm = "norm" in self.inputs

    def check_norm(self, norm: np.ndarray | None) -> np.ndarray | None:
        """``norm`` if the model takes it (a ValueError naming the fix when it is missing), else None."""
        if not self.needs_norm:
            if norm is not None:
                raise ValueError(f"{self.path}: an inductive model: it takes no --norm (each file is "
                                 "classified on its own)")
            return None
        if norm is None:
            raise ValueError(f"{self.path}: a speaker-adapted model needs the speaker's enrolment "
                             "statistics (--norm norm.npy, from --checkpoint RUN --enrol DIR|FILES "
                             "--save-norm norm.npy)")
        if norm.ndim != 2 or norm.shape[0] != 2:
            raise ValueError(f"speaker statistics must be (2, F): mean and std per feature, got {norm.shape}")
        return norm

    def probs(self, wave: np.ndarray, norm: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities ``(classes,)`` of one mono waveform; ``norm`` ``(2, F)`` when the
        model is speaker-normalised."""
        feed = {"wave": np.ascontiguousarray(wave, dtype=np.float32)[None]}
        norm = self.check_norm(norm)
        if norm is not None:
            feed["norm"] = np.ascontiguousarray(norm, dtype=np.float32)[None]
        return self.session.run(["probs"], feed)[0][0]
