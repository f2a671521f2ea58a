"""Checkpoints of the official REGNN release, read without running any of their code.

The official ``train.py`` saves the whole pickled module (``torch.save(model, path)``, e.g.
``mhp-epoch95-seed1.pth``; tensors possibly on CUDA). Such a file is recognised by the global
``models.mhp.MHP`` in its pickle and read by torch's restricted (``weights_only``) unpickler in
which every class of the release and every ``torch.nn`` module class it uses is an inert
:class:`Record` (its attributes kept, none of its code imported or run), and the two function
references the release stores (``MHP.cal_dist``) are inert names; anything else the pickle asks
for (another global, a call of anything but torch's tensor rebuilders) is refused. The records
are then mapped onto the replica (``configs/regnn_official.yaml`` with ``shared_topk``: the
official union top-k, so the model runs exactly as the checkpoint was trained).

    python -m react.reaction.official_regnn OFFICIAL.pth OUT_DIR   # -> OUT_DIR/state.pt (this project's)
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from react.config import config_layers
from react.utils.cli import add_out_dir

REPLICA = Path(__file__).resolve().parents[2] / "configs" / "regnn_official.yaml"
MARKER = "models.mhp.MHP"
RELEASE_CLASSES = (
    "models.mhp.MHP", "models.perceptual.PercepProcessor", "models.MULTModel.MULTModel",
    "models.multimodel.transformer.TransformerEncoder",
    "models.multimodel.transformer.TransformerEncoderLayer",
    "models.multimodel.multihead_attention.MultiheadAttention",
    "models.multimodel.position_embedding.SinusoidalPositionalEmbedding",
    "models.cognitive.CognitiveProcessor", "models.cognitive.EdgeLayer", "models.model_utils.Mlp",
    "models.LipschitzGraph.LipschitzGraph", "models.LipschitzGraph.GraphLayer",
    "models.LipschitzGraph.GraphAttention", "models.model_utils.ActNorm2D_N",
)
TORCH_CLASSES = tuple(f"torch.nn.modules.{name}" for name in (
    "linear.Linear", "linear.Identity", "conv.Conv1d", "normalization.LayerNorm", "container.ModuleList",
    "container.Sequential", "activation.GELU", "activation.ELU", "activation.ReLU", "dropout.Dropout",
))
FUNCTIONS = ("torch.nn.functional.mse_loss", "utils.compute_distance_fun.compute_distance")
# official state-dict names -> replica names ({i}: a layer index)
RENAMES = [
    (r"cognitive_processor\.convert_layer\.fc1\.", "cognitive.readout.mlp.0."),
    (r"cognitive_processor\.convert_layer\.fc2\.", "cognitive.readout.mlp.2."),
    (r"cognitive_processor\.EdgeLayer\.qk\.0\.fc1\.", "cognitive.edges.pre.0."),
    (r"cognitive_processor\.EdgeLayer\.qk\.0\.fc2\.", "cognitive.edges.pre.2."),
    (r"perceptual_processor\.fuse_model\.proj_v\.", "perceptual.proj_v."),
    (r"perceptual_processor\.fuse_model\.proj_a\.", "perceptual.proj_a."),
    (r"perceptual_processor\.fuse_model\.trans_v_with_a\.layers\.", "perceptual.v_from_a."),
    (r"perceptual_processor\.fuse_model\.trans_v_with_a\.layer_norm\.", "perceptual.cross_norm."),
    (r"perceptual_processor\.fuse_model\.trans_v_mem\.layers\.", "perceptual.memory."),
    (r"perceptual_processor\.fuse_model\.trans_v_mem\.layer_norm\.", "perceptual.norm."),
    (r"perceptual_processor\.fuse_model\.proj1\.", "perceptual.head.0."),
    (r"perceptual_processor\.fuse_model\.proj2\.", "perceptual.head.3."),
    (r"perceptual_processor\.fuse_model\.out_layer\.", "perceptual.out."),
    (r"\.self_attn\.", ".attn."), (r"\.fc1\.", ".ff.0."), (r"\.fc2\.", ".ff.3."),
    (r"\.layer_norms\.0\.", ".norm_q."), (r"\.layer_norms\.1\.", ".norm_ff."),
    (r"motor_processor\.Layers\.(\d+)\.norm_layer\._log_scale", r"motor.norms.\1.log_scale"),
    (r"motor_processor\.Layers\.(\d+)\.norm_layer\._shift", r"motor.norms.\1.shift"),
    (r"motor_processor\.Layers\.(\d+)\.attn_1\.", r"motor.blocks.\1."),
]
# in the release, never used by its forward or inverse: the motor's LU parametrisation, MULT's buffers
UNUSED = re.compile(r"motor_processor\.(l|log_s|u|p|sign_s)$|\.version$|\._float_tensor$")


class OfficialCheckpointError(ValueError):
    """An official-looking checkpoint that cannot be read safely or mapped onto the replica."""


class Record:
    """An inert stand-in for a class of the pickle: its attributes, no behaviour."""

    name = ""

    def __setstate__(self, state: Any) -> None:
        self.__dict__.update(state if isinstance(state, dict) else {"state": state})

    def get(self, path: str) -> Any:
        """An attribute or submodule by dotted path."""
        obj: Any = self
        for part in path.split("."):
            modules = obj.__dict__.get("_modules", {})
            obj = modules[part] if part in modules else obj.__dict__[part]
        return obj


class FunctionName:
    """An inert name of a function the pickle refers to (never called)."""

    def __init__(self, name: str):
        self.name = name


def _allowed() -> list[tuple[Any, str]]:
    records = [(type(name.rsplit(".", 1)[1], (Record,), {"name": name}), name)
               for name in RELEASE_CLASSES + TORCH_CLASSES]
    return records + [(FunctionName(name), name) for name in FUNCTIONS]


def is_official(file: str | os.PathLike) -> bool:
    """Whether ``file``'s pickle names the release's ``models.mhp.MHP`` (nothing is unpickled)."""
    try:
        return MARKER in torch.serialization.get_unsafe_globals_in_checkpoint(file)
    except Exception:  # noqa: BLE001 - not a readable torch file: not an official checkpoint either
        return False


def read_records(file: str | os.PathLike) -> Record:
    """The pickled ``MHP`` as records (tensors on the CPU)."""
    try:
        with torch.serialization.safe_globals(_allowed()):
            model = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - one line for every refusal
        text = str(err)
        named = re.search(r"GLOBAL (\S+)", text)
        detail = re.search(r"WeightsUnpickler error: ([^\n]*)", text)
        reason = (f"{named.group(1)} is not allowed" if named else detail.group(1).strip() if detail
                  else (text.strip().splitlines() or [type(err).__name__])[0])
        raise OfficialCheckpointError(
            f"{file}: refused, its pickle asks for more than the official REGNN's classes, tensors and "
            f"plain values ({reason}); nothing was run") from None
    if getattr(type(model), "name", "") != MARKER:
        raise OfficialCheckpointError(
            f"{file}: not an official REGNN model (the pickle holds {type(model).__name__})")
    return model


def flat_tensors(record: Record, prefix: str = "") -> dict[str, torch.Tensor]:
    """``state_dict()``-style names of the parameters and buffers of a module record."""
    out = {}
    for kind in ("_parameters", "_buffers"):
        for name, value in record.__dict__.get(kind, {}).items():
            if value is not None:
                out[prefix + name] = value.detach()
    for name, child in record.__dict__.get("_modules", {}).items():
        if child is not None:
            out.update(flat_tensors(child, f"{prefix}{name}."))
    return out


def _rename(name: str) -> str:
    for pattern, replacement in RENAMES:
        name = re.sub(pattern, replacement, name)
    return name


def _activation(record: Record) -> str:
    kind = type(record).name.rsplit(".", 1)[1]
    if kind not in ("ELU", "ReLU"):
        raise OfficialCheckpointError(f"motor activation {kind}: the replica has ELU and ReLU")
    return kind.lower()


def replica_config(model: Record) -> tuple[dict, list[str]]:
    """The replica's config for ``model`` (its sizes read from the records) and the overrides used."""
    fuse = model.get("perceptual_processor.fuse_model")
    cog, motor = model.get("cognitive_processor"), model.get("motor_processor")
    if not model.get("perceptual_processor").__dict__.get("only_fuse", True):
        raise OfficialCheckpointError("a perceptual processor with its own Swin/VGGish: the replica takes "
                                      "features")
    if type(cog.get("convert_layer")).name != "models.model_utils.Mlp" or model.__dict__.get("no_inverse"):
        raise OfficialCheckpointError("only the released setting (direct read-out, with the motor inverse) "
                                      "maps onto the replica")
    edge_mlp = cog.get("EdgeLayer.qk.0.fc1")
    layers = list(motor.get("Layers")._modules.values())
    attn = layers[0].get("attn_1")
    overrides = {
        "model.perceptual.video_dim": fuse.orig_d_v, "model.perceptual.audio_dim": fuse.orig_d_a,
        "model.perceptual.dim": fuse.d_v, "model.perceptual.heads": fuse.num_heads,
        "model.perceptual.layers": len(fuse.get("trans_v_with_a.layers")._modules),
        "model.perceptual.memory_layers": len(fuse.get("trans_v_mem.layers")._modules),
        "model.perceptual.project_audio": fuse.orig_d_a != fuse.d_a,
        "model.cognitive.hidden": cog.get("convert_layer.fc1").out_features,
        "model.cognitive.edge_dim": cog.get("EdgeLayer").n_channels,
        "model.cognitive.neighbours": cog.get("EdgeLayer").neighbors,
        "model.cognitive.attn_dim": edge_mlp.in_features, "model.cognitive.shared_topk": True,
        "model.nodes": cog.get("convert_layer.fc2").out_features,
        "model.motor.layers": len(layers), "model.motor.activation": _activation(attn.get("act_layer")),
        "model.motor.actnorm": bool(layers[0].norm), "model.motor.inverse_iters": layers[0].iters,
        "data.num_frames": edge_mlp.in_features,
    }
    items = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in overrides.items()]
    layers_ = config_layers(REPLICA, items)
    merged = OmegaConf.merge(*(OmegaConf.create(layer) for _, layer in layers_))
    return OmegaConf.to_container(merged, resolve=True), items


def replica_weights(model: Record, project_audio: bool) -> dict[str, torch.Tensor]:
    """The replica's state dict from the records."""
    state = {}
    for name, value in flat_tensors(model).items():
        if UNUSED.search(name) or (name.endswith("proj_a.weight") and not project_audio):
            continue
        if name == "cognitive_processor.EdgeLayer.qk.1.weight":
            query, key = value.chunk(2, 0)  # (2 * C * D, D): queries first, each channel's D rows
            state["cognitive.edges.query.weight"], state["cognitive.edges.key.weight"] = query, key
            continue
        new = _rename(name)
        if new.endswith((".log_scale", ".shift")):
            value = value[:, None]
        elif re.fullmatch(r"motor\.blocks\.\d+\.w", new):
            value = value.reshape(-1)
        state[new] = value.float().contiguous()
    for i, layer in enumerate(model.get("motor_processor.Layers")._modules.values()):
        if layer.norm:
            state[f"motor.norms.{i}.initialised"] = torch.tensor([bool(layer.get("norm_layer")._init)])
    state.update({"tau_gate.tau": torch.zeros(1), "tau_gate.total": torch.zeros(1, dtype=torch.float64),
                  "tau_gate.count": torch.zeros(1, dtype=torch.long)})  # the trainer's, not in the model
    return state


def read_official(file: str | os.PathLike) -> dict[str, Any]:
    """A checkpoint state (``model``, ``config``, ...) as :func:`react.engine.checkpoint.load_state`
    returns it, from an official REGNN file."""
    model = read_records(file)
    try:
        config, overrides = replica_config(model)
        weights = replica_weights(model, config["model"]["perceptual"]["project_audio"])
    except (KeyError, AttributeError, TypeError) as err:
        raise OfficialCheckpointError(f"{file}: an official REGNN whose layout the replica does not know "
                                      f"({type(err).__name__}: {err})") from None
    except OfficialCheckpointError as err:
        raise OfficialCheckpointError(f"{file}: {err}") from None
    return {"model": weights, "config": config, "epoch": 0,
            "official": {"file": str(file), "overrides": overrides}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="react convert",
                                     description="Convert an official REGNN checkpoint to this project's "
                                                 "format")
    parser.add_argument("--checkpoint", required=True, help="official file, e.g. mhp-epoch95-seed1.pth")
    add_out_dir(parser, "folder to write state.pt into", required=True)
    args = parser.parse_args(argv)
    if not Path(args.checkpoint).is_file():
        print(f"error: {args.checkpoint}: checkpoint file not found", file=sys.stderr)
        return 2
    if not is_official(args.checkpoint):
        print(f"error: {args.checkpoint}: not an official REGNN checkpoint (no {MARKER} in its pickle)",
              file=sys.stderr)
        return 2
    try:
        state = read_official(args.checkpoint)
    except OfficialCheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".state.pt.tmp"
    torch.save(state, tmp)
    tmp.replace(out / "state.pt")
    print(f"{out / 'state.pt'}: the official weights on configs/regnn_official.yaml "
          f"({', '.join(state['official']['overrides'])})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
