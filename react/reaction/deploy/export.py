"""Export a trained reaction generator and its feature backbones into one self-contained deploy folder.

    react deploy --checkpoint RUN_OR_CKPT --features configs/features_tiny.yaml \\
        --out-dir DIR [--iters N] [--format onnx|torchscript] [--atol 1e-3]

The folder holds ``generator``, ``video`` and ``audio`` networks (ONNX; TorchScript where ONNX
export fails or ``--format torchscript``), ``network_info.json`` (inputs, outputs, shapes, dynamic
axes, fps, window, stride, samples, feature dims, weights, parity) and a README. Each network is
checked against PyTorch on random inputs; the generator against the model's exact sampling
(early-stopped fixed point) with the same noise. It is written beside ``DIR`` and renamed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from react.reaction.deploy.graph import constant_weight_norms, generator_network
from react.reaction.deploy.networks import Networks, build_networks, dynamic_axes
from react.reaction.deploy.runtime import INFO, DeployBackend, DeployError, draw_noise
from react.utils.cli import add_out_dir
from react.utils.io import UMASK, save_json

FORMATS = ("onnx", "torchscript")


def _onnx_export(
    module: torch.nn.Module, example: tuple[torch.Tensor, ...], net: dict[str, Any], target: Path, opset: int
) -> None:
    import onnx

    # the TorchScript-based exporter warns that it is legacy and about traced shape arithmetic;
    # the parity check is what vouches for the graph. No no_grad: it would switch
    # nn.MultiheadAttention to a fused kernel that ONNX lacks.
    with warnings.catch_warnings(), constant_weight_norms():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            str(target),
            input_names=list(net["inputs"]),
            output_names=list(net["outputs"]),
            dynamic_axes=dynamic_axes(net),
            opset_version=opset,
            dynamo=False,
        )
    module.eval()  # the exporter restores the wrapper's training flag on every child
    proto = onnx.load(str(target))
    _bool_eyelike(proto)
    onnx.save(proto, str(target))


def _bool_eyelike(proto: Any) -> None:
    """onnxruntime has no boolean EyeLike (``torch.eye(n, dtype=bool)``): cast to float around it."""
    import onnx
    from onnx import TensorProto, helper

    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {v.name: v.type.tensor_type.elem_type for v in inferred.graph.value_info}
    nodes, i = proto.graph.node, 0
    while i < len(nodes):
        node = nodes[i]
        if node.op_type == "EyeLike" and types.get(node.output[0]) == TensorProto.BOOL:
            src, out = node.input[0], node.output[0]
            node.input[0], node.output[0] = f"{src}_float", f"{out}_float"
            nodes.insert(i, helper.make_node("Cast", [src], [f"{src}_float"], to=TensorProto.FLOAT))
            nodes.insert(i + 2, helper.make_node("Cast", [f"{out}_float"], [out], to=TensorProto.BOOL))
            i += 2
        i += 1


def _export_one(
    name: str,
    module: torch.nn.Module,
    example: tuple[torch.Tensor, ...],
    net: dict[str, Any],
    folder: Path,
    fmt: str,
    opset: int,
) -> None:
    """Write one network as ONNX, or TorchScript when asked or when the ONNX export fails."""
    if fmt == "onnx":
        target = folder / f"{name}.onnx"
        try:
            _onnx_export(module, example, net, target, opset)
            net.update(file=target.name, format="onnx", opset=opset)
            return
        except Exception as err:  # noqa: BLE001 - any exporter failure falls back, and is recorded
            target.unlink(missing_ok=True)
            net["onnx_error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"
    with torch.no_grad():
        traced = torch.jit.trace(module, example, check_trace=False)
    target = folder / f"{name}.ts.pt"
    traced.save(str(target))
    net.update(file=target.name, format="torchscript")


def _generator_example(
    info: dict[str, Any], windows: int, samples: int, seed: int
) -> tuple[torch.Tensor, ...]:
    """Random generator inputs for ``windows`` x ``samples`` (noise drawn as the runtime draws it)."""
    gen, sizes = torch.Generator().manual_seed(seed), {"windows": windows, "samples": samples}
    inputs = info["networks"]["generator"]["inputs"]
    return tuple(
        torch.from_numpy(draw_noise(info, windows, samples, seed)) if name == "noise"
        else torch.randn([sizes.get(d, d) for d in shape], generator=gen)
        for name, shape in inputs.items()
    )


def _examples(nets: Networks, samples: int) -> dict[str, tuple[torch.Tensor, ...]]:
    info, gen = nets.info, torch.Generator().manual_seed(0)
    crop = info["networks"]["video"]["crop"]
    return {
        "generator": _generator_example(info, 2, samples, 0),
        "video": (torch.randint(0, 256, (2, crop, crop, 3), generator=gen, dtype=torch.uint8),),
        "audio": (0.1 * torch.randn(2, info["networks"]["audio"]["sample_rate"], generator=gen),),
    }


def parity(folder: Path, nets: Networks, samples: int) -> dict[str, float]:
    """Max |deployed - PyTorch| per network on fresh random inputs (other batch sizes and lengths than
    the export's); the generator against the exact sampling with the same noise."""
    backend = DeployBackend(folder)
    info, gen = nets.info, torch.Generator().manual_seed(1)
    crop = info["networks"]["video"]["crop"]
    inputs = {
        "generator": _generator_example(info, 3, samples, 1),
        "video": (torch.randint(0, 256, (3, crop, crop, 3), generator=gen, dtype=torch.uint8),),
        "audio": (0.1 * torch.randn(1, int(1.7 * info["networks"]["audio"]["sample_rate"]), generator=gen),),
    }
    modules = {"generator": nets.generator, "video": nets.video, "audio": nets.audio}
    worst = {}
    for name, args in inputs.items():
        with torch.inference_mode():
            expected = modules[name](*args).numpy()
        got = backend.run(name, *(a.numpy() for a in args))
        worst[name] = float(np.abs(got - expected).max())
    return worst


README = """# {model} deployment

Made by `react deploy` from `{checkpoint}`.
Run it on a raw speaker clip without the training code (numpy, onnxruntime, av, soundfile):

    react infer --deploy {folder} --video speaker.mp4 --audio speaker.wav --out-dir OUT

| file | maps | format |
| --- | --- | --- |
{rows}

`network_info.json` gives every input and output (name, shape, dtype; named axes are dynamic), the
frame rate ({fps} fps), the generator's window ({window} frames, one every {stride}), the number of
samples ({samples}), the feature sizes, where the weights came from ("random" for random-init
backbones) and the largest |deployed - PyTorch| difference of each network (`parity_max_abs`).

Pipeline: decode frames, scale the shorter side to {resize} px and cut the centre {crop} px ->
`video`; mono {sample_rate} Hz audio (zero-mean, unit-variance if `normalize`) -> `audio`, whose
rows are averaged onto the video frames; windows of the model's inputs ({inputs}) -> `generator`
with noise `(windows, samples, {noise_shape})` -> reactions `(windows, samples, {window}, {nodes})`,
overlap-added with a raised-sine taper ({feedback}). The noise is an input: the same noise gives the
same {samples} reactions; `network_info.json` (`noise`) says how it is drawn.{inverse}
"""


def write_readme(folder: Path, info: dict[str, Any], name: str) -> None:
    """``folder/README.md`` for the deploy folder that will be called ``name``."""
    nets = info["networks"]
    iters = nets["generator"].get("inverse_iters")
    rows = "\n".join(
        f"| `{n['file']}` | {', '.join(n['inputs'])} -> {', '.join(n['outputs'])} | {n['format']} |"
        for n in nets.values()
    )
    v, a = nets["video"], nets["audio"]
    text = README.format(
        checkpoint=nets["generator"]["weights"]["checkpoint"],
        folder=name,
        rows=rows,
        fps=info["fps"],
        window=info["window"],
        stride=info["stride"],
        samples=info["samples"],
        resize=v["resize"],
        crop=v["crop"],
        sample_rate=a["sample_rate"],
        nodes=info["nodes"],
        model=info["model"],
        inputs=", ".join(info["inputs"]),
        noise_shape=", ".join(map(str, info["noise_shape"])),
        feedback=f"windows in order, {info['window']} frames apart, each fed the last {info['feedback']} "
        "generated frames as `past`" if info["feedback"] else "every stride frames",
        inverse=f" The generator's fixed-point inverse is unrolled {iters} times per layer, its early stop "
        "kept as masks (the model's tolerance)." if iters else "",
    )
    (folder / "README.md").write_text(text)


def export_deploy(
    nets: Networks, out: str | Path, iters: int = 0, fmt: str = "onnx", opset: int = 17, atol: float = 1e-3
) -> dict[str, Any]:
    """Write the deploy folder ``out`` (replacing it when complete); returns its ``network_info``.

    ``iters``: REGNN's unrolled fixed-point iterations per motor layer (0 = the model's
    ``inverse_iters``); other models export their ``generate`` as it is.
    Raises :class:`DeployError` when a network differs from PyTorch by more than ``atol``.
    """
    if fmt not in FORMATS:
        raise DeployError(f"format '{fmt}': choose one of {', '.join(FORMATS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    info = json.loads(json.dumps(nets.info))
    generator = generator_network(nets.model, iters)
    if "inverse_iters" in info["networks"]["generator"]:
        info["networks"]["generator"]["inverse_iters"] = generator.iters
    samples = info["samples"]
    modules = {"generator": generator, "video": nets.video, "audio": nets.audio}
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        for name, example in _examples(nets, samples).items():
            _export_one(name, modules[name], example, info["networks"][name], tmp, fmt, opset)
        info["format"] = "onnx" if all(n["format"] == "onnx" for n in info["networks"].values()) else "mixed"
        save_json(info, tmp / INFO)
        worst = parity(tmp, nets, samples)
        for name, value in worst.items():
            info["networks"][name]["parity_max_abs"] = value
        save_json(info, tmp / INFO)
        write_readme(tmp, info, out.name)
        bad = {k: v for k, v in worst.items() if v > atol}
        if bad:
            raise DeployError(
                "deployed networks differ from PyTorch by more than "
                f"{atol}: {', '.join(f'{k} {v:.3g}' for k, v in bad.items())}"
                + (" (raise deploy.inverse_iters)" if "generator" in bad else "")
            )
        if out.exists():
            shutil.rmtree(out)
        os.chmod(tmp, 0o777 & ~UMASK)  # mkdtemp's folder is the owner's only
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="react deploy", description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True,
                        help="a generator's run dir, checkpoint dir or state.pt")
    parser.add_argument(
        "--features", required=True, help="the feature-extraction config of its training data"
    )
    add_out_dir(parser, required=True, dest="out", help="deploy folder to write")
    parser.add_argument("--iters", type=int, default=0,
                        help="REGNN: unrolled inverse iterations (0 = the model's)")
    parser.add_argument("--format", choices=FORMATS, default="onnx")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--atol", type=float, default=1e-3, help="largest allowed |deployed - PyTorch|")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the feature config")
    args = parser.parse_args(argv)
    from features.config import FeatureConfig
    from react.config import ConfigError, load_config
    from react.engine import CheckpointError
    from react.errors import user_message

    try:
        # split, type and data.root select clips to extract: unused here, so any value does
        features = load_config(
            args.features, ["split=all", "type=all", "data.root=.", *args.overrides], schema=FeatureConfig
        )
        info = export_deploy(
            build_networks(args.checkpoint, features),
            args.out,
            args.iters,
            args.format,
            args.opset,
            args.atol,
        )
    except (FileNotFoundError, ConfigError, CheckpointError, DeployError) as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    for net in info["networks"].values():
        worst = net["parity_max_abs"]
        fallback = f" (ONNX export failed: {net['onnx_error']})" if "onnx_error" in net else ""
        print(f"{args.out}/{net['file']}: {net['format']}{fallback}, max |deployed - PyTorch| = {worst:.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
