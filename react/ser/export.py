"""Export a trained speech-emotion model to ONNX (dynamic batch and length) and check it against
PyTorch with onnxruntime.

    react ser export --checkpoint runs/ser_tiny --out runs/ser_tiny/ser.onnx

The graph maps ``wave`` (batch, samples) float32 at the training sample rate to ``probs``
(batch, classes), following the checkpoint's protocol: an inductive model takes the waveform only
(a ``population`` model's training statistics are constants of the graph); a speaker-adapted one
(``normalization=speaker``) also takes ``norm`` (batch, 2, F), the mean and std of each log-mel band
and acoustic descriptor over the speaker's enrolment recordings
(:func:`react.ser.inference.speaker_norm`). The descriptors are computed inside the graph. The
protocol, class names, sample rate, input names and the checkpoint it came from are stored in the
model's metadata. The classic model (:mod:`react.ser.classic`) exports what follows openSMILE:
``functionals`` (batch, 88), its eGeMAPSv02 functionals [and ``norm`` (batch, 2, 88)] to ``probs``.
An export already made from the same checkpoint file is kept, not redone.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from react.ser.classic import N_FUNCTIONALS, ClassicSER
from react.utils.io import atomic_path


class ProbabilityModel(nn.Module):
    """Waveforms (all valid samples) [and speaker statistics] -> class probabilities."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, wave: torch.Tensor, norm: torch.Tensor | None = None) -> torch.Tensor:
        return torch.softmax(self.model(wave, norm=norm)["logits"], dim=-1)


class ClassicProbabilities(nn.Module):
    """The classic model after openSMILE: functionals [and speaker statistics] -> probabilities."""

    def __init__(self, model: ClassicSER):
        super().__init__()
        self.model = model

    def forward(self, functionals: torch.Tensor, norm: torch.Tensor | None = None) -> torch.Tensor:
        return torch.softmax(self.model.head(functionals, norm), dim=-1).float()


def _inputs(model: nn.Module, wave: torch.Tensor) -> dict[str, torch.Tensor]:
    """The export's inputs for ``wave``: with a speaker-adapted model also a ``norm`` (here the
    wave's own statistics: any speaker statistics serve to trace and check the graph); for the
    classic model, stand-in functionals (a seeded draw per batch size) instead of the wave."""
    if isinstance(model, ClassicSER):
        x = torch.randn(len(wave), N_FUNCTIONALS, generator=torch.Generator().manual_seed(len(wave)))
        inputs = {"functionals": model.mean.float() + x * model.scale.float()}
        if model.speaker_norm:
            inputs["norm"] = torch.stack([x[0], x[-1].abs() + 1]).expand(len(wave), -1, -1).contiguous()
        return inputs
    if not getattr(model, "speaker_norm", False):
        return {"wave": wave}
    from react.ser.inference import speaker_norm

    norm = torch.from_numpy(speaker_norm(model.raw_features, list(wave.numpy())))
    return {"wave": wave, "norm": norm.expand(len(wave), -1, -1).contiguous()}


def checkpoint_stamp(checkpoint: str | os.PathLike) -> str:
    """``path:size:mtime_ns`` of a checkpoint's ``state.pt``: what an export was made from."""
    from react.engine import checkpoint_file

    file = checkpoint_file(checkpoint).resolve()
    return f"{file}:{file.stat().st_size}:{file.stat().st_mtime_ns}"


def exported_from(target: str | os.PathLike) -> str | None:
    """The checkpoint stamp recorded in an existing export, if any."""
    import onnx

    try:
        meta = {p.key: p.value for p in onnx.load(str(target), load_external_data=False).metadata_props}
    except Exception:  # noqa: BLE001 - a missing or damaged file is simply exported again
        return None
    return meta.get("checkpoint")


def export_onnx(model: nn.Module, target: str | os.PathLike, classes: list[str], sample_rate: int,
                opset: int = 17, atol: float = 1e-4, check_seconds: tuple[float, ...] = (1.0, 2.7),
                source: str = "") -> float:
    """Write ``target`` (atomically) and return the largest |ONNX - PyTorch| probability difference
    over test inputs of ``check_seconds`` lengths; raise if it exceeds ``atol``."""
    import onnx
    import onnxruntime as ort

    wrapper = (ClassicProbabilities if isinstance(model, ClassicSER) else ProbabilityModel)(model).eval()
    example = _inputs(model, torch.randn(2, int(sample_rate * check_seconds[0])) * 0.1)
    axes = {"wave": {0: "batch", 1: "samples"}, "functionals": {0: "batch"}, "norm": {0: "batch"},
            "probs": {0: "batch"}}
    target = Path(target)
    with atomic_path(target) as tmp:
        # the TorchScript exporter (fast, exact here) warns that it is legacy and about traced
        # shape arithmetic; the parity check below is what vouches for the graph
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Constant folding")
            torch.onnx.export(wrapper, tuple(example.values()), str(tmp), input_names=list(example),
                              output_names=["probs"], dynamic_axes={k: axes[k] for k in [*example, "probs"]},
                              opset_version=opset, dynamo=False)
        proto = onnx.load(str(tmp))
        meta = {"protocol": "speaker-adapted" if "norm" in example else "inductive",
                "classes": ",".join(classes), "sample_rate": str(sample_rate)}
        if list(example) != ["wave"]:
            meta["inputs"] = ",".join(example)
        if "functionals" in example:
            meta["features"] = "eGeMAPSv02 functionals (openSMILE), computed outside this graph"
        if source:
            meta["checkpoint"] = source
        for key, value in meta.items():
            entry = proto.metadata_props.add()
            entry.key, entry.value = key, value
        onnx.save(proto, str(tmp))
        session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
        worst = 0.0
        gen = torch.Generator().manual_seed(0)
        for batch, seconds in enumerate(check_seconds, start=1):
            inputs = _inputs(model, torch.randn(batch, int(sample_rate * seconds), generator=gen) * 0.1)
            with torch.no_grad():
                expected = wrapper(*inputs.values()).numpy()
            got = session.run(["probs"], {k: v.numpy() for k, v in inputs.items()})[0]
            worst = max(worst, float(np.abs(got - expected).max()))
        if worst > atol:
            raise RuntimeError(f"{target}: ONNX output differs from PyTorch by {worst:.3g} > {atol}")
    return worst


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="react ser export",
                                     description="Export a speech-emotion checkpoint to ONNX")
    parser.add_argument("--checkpoint", required=True, help="run dir, checkpoint dir or state.pt")
    parser.add_argument("--out", required=True, help="output .onnx file")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--atol", type=float, default=1e-4, help="largest allowed probability difference")
    args = parser.parse_args(argv)
    from react.errors import user_message
    from react.ser.predict import load_ser_model
    from react.utils.io import output_file

    try:
        output_file(args.out)
        stamp = checkpoint_stamp(args.checkpoint)
        if Path(args.out).is_file() and exported_from(args.out) == stamp:
            print(f"{args.out} was exported from this checkpoint already; kept")
            return 0
        model, classes, sample_rate = load_ser_model(args.checkpoint)
        worst = export_onnx(model, args.out, classes, sample_rate, args.opset, args.atol, source=stamp)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: classes {', '.join(classes)}, {sample_rate} Hz; "
          f"max |ONNX - PyTorch| = {worst:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
