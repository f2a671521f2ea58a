"""The four stages of a REGNN project as commands over the one config system, each with its own
run folder ``<runs_dir>/<name>/<stage>`` in which the next stage finds its input by run name.

    react stages {preproc,train,deploy,infer,all} --config configs/stages/tiny.yaml [key=value ...]

- ``preproc``: feature extraction (:mod:`features.extract`) of every split of ``data.root`` into
  ``preproc/features``; the resolved extraction config is kept as ``preproc/features.yaml``.
- ``train``: the engine (:mod:`react.engine`) on those features into ``train`` (resumes an
  interrupted run; a finished one is kept), feature sizes taken from ``preproc``.
- ``deploy``: ONNX export of the trained generator and of the backbones ``preproc`` used
  (:mod:`react.reaction.deploy.export`) into ``deploy``.
- ``infer``: reactions to one raw speaker clip with the deploy folder (:mod:`react.reaction.infer`) into
  ``infer``: ``result-<k>.pth``/``.csv``, plots and the face-sketch video.

A stage config names *base* configs (``preproc.config``, ``train.config``) and overrides only what
differs (``preproc.set``, ``train.set``: nested keys of those configs); ``key=value`` arguments
override the stage config itself, e.g. ``train.set.train.epochs=2``. A relative path in a stage
config file (:data:`PATH_KEYS`) is relative to that file; one given on the command line, to the
working directory. See docs/stages.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from react.config import ConfigError, config_layers, load_config, resolve, save_config
from react.utils.io import save_json
from react.utils.logging import get_logger, setup_logging

log = get_logger(__name__)
STAGES = ("preproc", "train", "deploy", "infer")


@dataclass
class StageData:
    root: str = "data/demo"  # a REACT-layout dataset (media and Emotion CSVs)


@dataclass
class PreprocStage:
    config: str = "configs/features_tiny.yaml"  # base feature-extraction config
    set: dict[str, Any] = field(default_factory=dict)  # its overrides (nested keys)


@dataclass
class TrainStage:
    config: str = "configs/regnn_tiny.yaml"  # base REGNN training config
    set: dict[str, Any] = field(default_factory=dict)  # its overrides (nested keys)


@dataclass
class DeployStage:
    checkpoint: str = "best"  # best | last (of the train stage) | a checkpoint file (e.g. an official .pth)
    inverse_iters: int = 0  # unrolled fixed-point iterations per motor layer (0 = the model's)
    format: str = "onnx"  # onnx | torchscript
    opset: int = 17
    atol: float = 1e-3  # largest allowed |deployed - PyTorch|


@dataclass
class InferStage:
    video: str = ""  # speaker clip ("" = the first test speaker of data.root)
    audio: str = ""
    samples: int = 0  # 0 = the deployment's
    seed: int = 0
    online: bool = False  # causal streaming generation
    chunk: int = 1  # online: frames per step
    render: bool = True  # plots and face-sketch video


@dataclass
class StagesConfig:
    name: str = "???"  # run name: everything goes to <runs_dir>/<name>/
    runs_dir: str = "runs"
    data: StageData = field(default_factory=StageData)
    preproc: PreprocStage = field(default_factory=PreprocStage)
    train: TrainStage = field(default_factory=TrainStage)
    deploy: DeployStage = field(default_factory=DeployStage)
    infer: InferStage = field(default_factory=InferStage)


PATH_KEYS = ("runs_dir", "data.root", "preproc.config", "train.config", "infer.video", "infer.audio")


def load_stages_config(path: str | os.PathLike, overrides: Iterable[str] = ()) -> DictConfig:
    """Resolve a stage config: defaults <- the YAML chain at ``path`` <- ``overrides``; each YAML
    file's relative :data:`PATH_KEYS` are made relative to its own folder."""
    *files, command_line = config_layers(path, overrides)
    for source, data in files:
        for key in PATH_KEYS:
            *parents, leaf = key.split(".")
            node = data
            for part in parents:
                node = node.get(part) if isinstance(node, dict) else None
            if isinstance(node, dict) and isinstance(node.get(leaf), str) and node[leaf]:
                node[leaf] = os.path.normpath(Path(source).parent / node[leaf])  # absolute stays absolute
    return resolve(StagesConfig, [*files, command_line])


class StageError(RuntimeError):
    """A stage that cannot run (its input stage has not run) or that failed."""


def stage_dir(cfg: DictConfig, stage: str) -> Path:
    return Path(cfg.runs_dir).resolve() / cfg.name / stage


def _needs(cfg: DictConfig, stage: str, file: str) -> Path:
    path = stage_dir(cfg, stage) / file
    if not path.exists():
        raise StageError(
            f"{path}: not found; run the {stage} stage first: react stages {stage} "
            f"--config <this config>"
        )
    return path


def _layers(base: str, own: dict[str, Any], user: DictConfig, source: str) -> list[tuple[str, dict]]:
    """The base config chain, then what the stage sets, then the user's ``set`` overrides."""
    return [*config_layers(base), ("stage", own), (source, OmegaConf.to_container(user, resolve=True))]


def feature_config(cfg: DictConfig) -> DictConfig:
    """The extraction config of ``preproc``, its layout resolved (MARS: every frame at 30 fps), as
    ``features.yaml`` keeps it for ``deploy`` to record."""
    from features.config import FeatureConfig, validate
    from features.extract import for_layout

    own = {
        "data": {"root": str(Path(cfg.data.root).resolve())},
        "out_dir": str(stage_dir(cfg, "preproc") / "features"),
        "split": "all",
        "type": "all",
    }
    fcfg = resolve(FeatureConfig, _layers(cfg.preproc.config, own, cfg.preproc.set, "preproc.set"))
    validate(fcfg)
    return for_layout(fcfg)


def preproc(cfg: DictConfig) -> Path:
    """Extract video and audio features of every split; returns ``preproc``."""
    from features.extract import extract

    run = stage_dir(cfg, "preproc")
    fcfg = feature_config(cfg)
    reports = extract(fcfg)
    failed = {f"{name}: {clip}": why for name, r in reports.items() for clip, why in r.failed.items()}
    if failed:
        raise StageError(
            f"{len(failed)} clip(s) failed feature extraction, e.g. {next(iter(failed.items()))}"
        )
    save_config(fcfg, run, "features.yaml")
    dims = {kind: _feature_dim(run / "features", kind) for kind in ("video", "audio")}
    save_json(
        {
            "features_root": str(run / "features"),
            **{f"{k}_dim": v for k, v in dims.items()},
            "clips": {name: len(r.done) + len(r.skipped) for name, r in reports.items()},
        },
        run / "summary.json",
    )
    log.info(
        "preproc: features in %s (video %d-d, audio %d-d)", run / "features", dims["video"], dims["audio"]
    )
    return run


def _feature_dim(root: Path, kind: str) -> int:
    folder = "Video_features" if kind == "video" else "Audio_features"
    sidecar = next((root / "train" / folder).rglob("*.json"), None)
    if sidecar is None:
        raise StageError(f"{root / 'train' / folder}: no features were written")
    return int(json.loads(sidecar.read_text())["shape"][1])


def train(cfg: DictConfig) -> Path:
    """Train REGNN on ``preproc``'s features with the engine; returns ``train``."""
    from react.engine import run as run_engine
    from react.tasks import task_schema

    summary = json.loads(_needs(cfg, "preproc", "summary.json").read_text())
    run = stage_dir(cfg, "train")
    own = {
        "task": "regnn",
        "out_dir": str(run),
        "resume": "auto",
        "data": {"root": str(Path(cfg.data.root).resolve()), "features_root": summary["features_root"]},
        "model": {"perceptual": {"video_dim": summary["video_dim"], "audio_dim": summary["audio_dim"]}},
    }
    tcfg = resolve(task_schema("regnn"), _layers(cfg.train.config, own, cfg.train.set, "train.set"))
    if tcfg.task != "regnn":
        raise ConfigError(f"train.set: task must stay regnn, got '{tcfg.task}'")
    run_engine(tcfg)
    return run


STAMP = ".stage.json"  # what a finished deploy / infer stage was made from


def _digests(files: list[Path]) -> list[list[str]]:
    return [[str(f.resolve()), hashlib.sha1(f.read_bytes()).hexdigest()] for f in files]


def _stamp(settings: Any, *files: Path) -> dict[str, Any]:
    """The settings and the path and content hash of every input file of a stage (contents, not
    times: an earlier stage may rewrite an identical file)."""
    return {"settings": OmegaConf.to_container(settings, resolve=True), "inputs": _digests(list(files))}


def _outputs(run: Path) -> list[list[str]]:
    return _digests(sorted(f for f in run.rglob("*") if f.is_file() and f.name != STAMP))


def record_done(run: Path, stamp: dict[str, Any]) -> None:
    """Record that ``run`` was finished from ``stamp``'s inputs, with the hash of every file it holds."""
    save_json({**stamp, "outputs": _outputs(run)}, run / STAMP)


def is_done(run: Path, stamp: dict[str, Any]) -> bool:
    """True when ``run`` was finished from exactly these inputs and every file it wrote is still as
    written (a stage is then skipped; a corrupted or deleted output makes it run again)."""
    try:
        record = json.loads((run / STAMP).read_text())
    except (OSError, ValueError):
        return False
    outputs = record.pop("outputs", None)
    return record == json.loads(json.dumps(stamp)) and outputs == _outputs(run)


def deploy(cfg: DictConfig) -> Path:
    """Export ``train``'s checkpoint and ``preproc``'s backbones; returns ``deploy``."""
    from features.config import FeatureConfig
    from react.reaction.deploy.export import export_deploy
    from react.reaction.deploy.networks import build_networks

    features_file = _needs(cfg, "preproc", "features.yaml")
    features = load_config(features_file, schema=FeatureConfig)
    if cfg.deploy.checkpoint in ("best", "last"):
        checkpoint = _needs(cfg, "train", f"checkpoints/{cfg.deploy.checkpoint}")
    else:  # a checkpoint file (this project's state.pt, or an official REGNN .pth)
        checkpoint = Path(cfg.deploy.checkpoint)
        if not checkpoint.exists():
            raise StageError(f"{checkpoint}: deploy.checkpoint not found (best, last or a checkpoint file)")
    d, run = cfg.deploy, stage_dir(cfg, "deploy")
    stamp = _stamp(d, features_file, checkpoint if checkpoint.is_file() else checkpoint / "state.pt")
    if is_done(run, stamp):
        log.info("deploy: %s is up to date with its checkpoint and settings, kept", run)
        return run
    (run / STAMP).unlink(missing_ok=True)
    info = export_deploy(
        build_networks(checkpoint, features), run, d.inverse_iters, d.format, d.opset, d.atol
    )
    for net in info["networks"].values():
        log.info(
            "deploy: %s (%s), max |deployed - PyTorch| = %.2e",
            net["file"],
            net["format"],
            net["parity_max_abs"],
        )
    record_done(run, stamp)
    return run


def default_clip(cfg: DictConfig) -> tuple[Path, Path]:
    """Video and audio of the first test speaker clip of ``data.root``, in either layout."""
    from react.reaction.data import layouts

    split = layouts.read_split(cfg.data.root, "test")
    return layouts.media_paths(split, split.clips[0])


def infer(cfg: DictConfig) -> Path:
    """Reactions, plots and face video for one raw speaker clip with ``deploy``; returns ``infer``."""
    from react.reaction.deploy.runtime import DeployBackend
    from react.reaction.infer import infer_clip

    i, run = cfg.infer, stage_dir(cfg, "infer")
    video, audio = i.video, i.audio
    if not video:
        video, audio = default_clip(cfg)
    elif not audio:
        raise ConfigError("infer.video is set but infer.audio is not: give both")
    deployed = _needs(cfg, "deploy", "network_info.json")
    stamp = _stamp(i, deployed, Path(video), Path(audio))
    if is_done(run, stamp):
        log.info("infer: %s is up to date with the deploy folder and the clip, kept", run)
        return run
    (run / STAMP).unlink(missing_ok=True)
    info = infer_clip(DeployBackend(deployed.parent), video, audio, run, i.samples or None, i.seed, i.online,
                      i.chunk, i.render)
    log.info("infer: %d reactions x %d frames of %s -> %s", info["samples"], info["frames"], video, run)
    record_done(run, stamp)
    return run


RUNNERS = {"preproc": preproc, "train": train, "deploy": deploy, "infer": infer}


def run_stages(cfg: DictConfig, stage: str) -> list[Path]:
    """Run ``stage`` (or ``all`` of them in order); the resolved config is kept beside the runs once
    a stage has run (a call that fails at once leaves nothing behind)."""
    done = []
    for name in STAGES if stage == "all" else (stage,):
        done.append(RUNNERS[name](cfg))
        save_config(cfg, stage_dir(cfg, name).parent, "stages.yaml")
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="react stages", description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=(*STAGES, "all"))
    parser.add_argument("--config", required=True, help="stage config, e.g. configs/stages/tiny.yaml")
    parser.add_argument("overrides", nargs="*", help="key=value, e.g. name=try2 train.set.train.epochs=2")
    args = parser.parse_intermixed_args(argv)
    setup_logging()
    from react.engine import CheckpointError
    from react.errors import user_message
    from react.reaction.deploy.runtime import INPUT_ERRORS

    try:
        cfg = load_stages_config(args.config, args.overrides)
        done = run_stages(cfg, args.stage)
    except (ConfigError, StageError, CheckpointError, *INPUT_ERRORS) as err:
        print(f"error: {user_message(err)}", file=sys.stderr)
        return 2
    print("\n".join(str(p) for p in done))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
