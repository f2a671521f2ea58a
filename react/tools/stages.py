"""The five stages of the training tools on one resolved :class:`react.tools.config.ToolsConfig`.

Each stage reads what the previous ones wrote under ``<output_dir>/<dataset>/<modality>/`` and
returns the sessions it skipped (only pre-processing skips any). The training stages run the
``ssl`` and ``classify`` tasks on the project's engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from features.handcrafted import extract_handcrafted
from react.config import merge_config
from react.data.windows import Skipped, preprocess
from react.tasks import task_schema
from react.tools.config import modality_dir, stage_config
from react.tools.ssl_features import extract_ssl_features

Stage = Callable[[DictConfig], list[Skipped]]


def run_preprocess(cfg: DictConfig) -> list[Skipped]:
    data = OmegaConf.to_object(cfg)
    return preprocess(data.dataset, data.preprocess, data.seed).skipped


def run_handcrafted(cfg: DictConfig) -> list[Skipped]:
    written = extract_handcrafted(modality_dir(cfg), OmegaConf.to_object(cfg.handcrafted))
    print(f"{modality_dir(cfg)}: " + ", ".join(f"{kind} {n}" for kind, n in written.items()) + " files")
    return []


def task_config(cfg: DictConfig, stage: str) -> DictConfig:
    """The typed config of the task behind a training stage (``ssl`` or ``finetune``)."""
    section = stage_config(cfg, stage)
    return merge_config(OmegaConf.structured(task_schema(section.task)), OmegaConf.to_container(section),
                        f"tools section '{stage}'")


def run_ssl_train(cfg: DictConfig) -> list[Skipped]:
    from react.engine import run

    run(task_config(cfg, "ssl"))
    return []


def run_ssl_features(cfg: DictConfig) -> list[Skipped]:
    section = stage_config(cfg, "ssl")
    feats = cfg.ssl_features
    folder = modality_dir(cfg)
    counts = extract_ssl_features(folder, section.out_dir, feats.input_type or cfg.preprocess.process,
                                  feats.output, feats.batch_size, section.device)
    print(f"{folder / feats.output}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + " windows")
    return []


def run_finetune(cfg: DictConfig) -> list[Skipped]:
    from react.engine import run

    section = task_config(cfg, "finetune")
    run(section)
    metrics = Path(section.out_dir) / "test_metrics.json"
    if metrics.is_file():
        print(format_report(json.loads(metrics.read_text()), section.out_dir))
    return []


def format_report(m: dict, run_dir: str) -> str:
    """The fine-tuning report as text: overall figures, per class, confusion."""
    labels = m["labels"]
    lines = [f"fine-tuning report ({run_dir}): {m['n']} test windows",
             *([f"  protocol {m['protocol']['name']}: {m['protocol']['rule']}"] if m.get("protocol") else []),
             f"  accuracy {m['accuracy']:.3f}   UAR {m['uar']:.3f}   macro-F1 {m['macro_f1']:.3f}   "
             f"(chance UAR {m['chance_uar']:.3f})",
             f"  {'class':<12}{'precision':>10}{'recall':>8}{'f1':>7}{'support':>9}"]
    lines += [f"  {name:<12}{c['precision']:>10.3f}{c['recall']:>8.3f}{c['f1']:>7.3f}{c['support']:>9d}"
              for name, c in m["per_class"].items()]
    width = max(len(x) for x in labels) + 2
    lines.append("  confusion (rows true, columns predicted):")
    lines.append("  " + " " * width + "".join(f"{x:>{width}}" for x in labels))
    lines += ["  " + f"{name:<{width}}" + "".join(f"{v:>{width}d}" for v in row)
              for name, row in zip(labels, m["confusion"])]
    return "\n".join(lines)


STAGES: dict[str, Stage] = {
    "preprocess": run_preprocess,
    "handcrafted": run_handcrafted,
    "ssl-train": run_ssl_train,
    "ssl-features": run_ssl_features,
    "finetune": run_finetune,
}
