"""An HTML report of one evaluation: the run (model, checkpoint, config; a warning when its features
came from random-init backbones), its metrics beside the baselines of a comparison table, per-clip
scores and one page per clip. A metrics file computed from another prediction folder is refused.

Layout of the output folder (open ``index.html`` in a browser; every link is relative)::

    index.html  style.css  metrics.json  summary.png
    clips/<NNN>/index.html  au_heatmap.png  valence_arousal.png  expressions.png  diversity.png
                [face.mp4]
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime
from html import escape
from pathlib import Path

import numpy as np

from evaluation.metrics import METRIC_KEYS, fr_var, s_mse
from react.reaction.data import react_layout as L
from react.reaction.viz.clip import PLOTS, VIDEO, render_clip
from react.reaction.viz.inputs import VizError, find_samples, load_attributes, load_samples
from react.reaction.viz.plots import plot_clip_summary

METRIC_NOTES = {  # key -> (better, what it measures)
    "FRC": ("higher", "appropriateness: CCC with the closest appropriate real reaction, summed over samples"),
    "FRD": ("lower", "appropriateness: DTW distance to the closest appropriate real reaction, summed"),
    "S-MSE": ("higher", "diversity among the samples of one clip"),
    "FRVar": ("higher", "variation of each reaction over time"),
    "FRDvs": ("higher", "diversity across speakers (same sample index, different clips)"),
    "TLCC": ("lower", "synchrony: |lag| in frames of the best time-lagged correlation with the speaker"),
}
STYLE = """body { font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1200px; color: #222; }
table { border-collapse: collapse; margin: 12px 0; }
th, td { border: 1px solid #ccc; padding: 4px 10px; text-align: left; vertical-align: middle; }
th { background: #f0f0f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img.plot { max-width: 100%; border: 1px solid #ddd; margin: 6px 0 18px; }
img.thumb { width: 150px; }
video { max-width: 100%; border: 1px solid #ddd; }
nav a { margin-right: 16px; }
.meta { color: #555; }
.warn { background: #fff3cd; border: 1px solid #e0c060; padding: 6px 10px; }
"""


# what the report shows of the rest of metrics.json (internal counters and timings stay out)
SHOWN_DETAILS = ("mode", "split", "clips", "samples", "tlcc_samples", "metric_set", "layout",
                 "TLCC_worst_clips")


@dataclass(frozen=True)
class ClipEntry:
    """One rendered clip of the report."""

    index: int
    clip: str
    listener: str
    folder: str  # relative to the report root
    s_mse: float
    fr_var: float
    frc: float | None  # from metrics.json's per_clip scores, when it has them
    frd: float | None


def read_metrics(path: str | os.PathLike) -> dict:
    """A ``metrics.json`` written by ``evaluation.py``; every missing metric is named."""
    path = Path(path)
    if not path.is_file():
        raise VizError(f"{path}: metrics file not found")
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise VizError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(metrics, dict):
        raise VizError(f"{path}: expected a JSON object of metrics")
    missing = [k for k in METRIC_KEYS if k not in metrics]
    if missing:
        raise VizError(f"{path}: missing metric(s) {', '.join(missing)} (write it with evaluation.py --out)")
    return metrics


def check_pred_dir(metrics: dict, pred_dir: str | os.PathLike, metrics_path: str | os.PathLike) -> None:
    """Refuse metrics that record another prediction folder than the one the report draws."""
    recorded = metrics.get("pred_dir")
    if recorded and Path(recorded).resolve() != Path(pred_dir).resolve():
        raise VizError(f"{metrics_path}: computed from the predictions in {recorded}, not {pred_dir}; "
                       "score these with evaluation.py --out")


def run_details(pred_dir: str | os.PathLike, metrics: dict,
                split: str) -> tuple[list[tuple[str, str]], list[str]]:
    """``(label, value)`` rows naming the model, checkpoint and config of the run whose folder holds
    ``pred_dir`` (as training and ``react.reaction.online`` write it), and warnings: features that came from
    a randomly initialised backbone (their sidecar records ``weights: random``)."""
    import yaml

    run = Path(pred_dir).resolve().parent
    config = run / "config.yaml"
    cfg = yaml.safe_load(config.read_text()) if config.is_file() else None
    cfg = cfg if isinstance(cfg, dict) else {}
    rows = [("model", str(cfg["task"]))] if "task" in cfg else []
    best = run / "checkpoints" / "best"
    checkpoint = metrics.get("checkpoint") or (str(best) if best.is_dir() else "")
    rows += [("checkpoint", checkpoint)] if checkpoint else []
    rows += [("config", str(config))] if cfg else []
    data = cfg.get("data") if isinstance(cfg.get("data"), dict) else {}
    features = data.get("features_root") or data.get("root")
    warnings = []
    for kind in ("Video_features", "Audio_features") if features else ():
        sidecar = next((Path(features) / split / kind).rglob("*.json"), None)
        settings = json.loads(sidecar.read_text()) if sidecar else {}
        if settings.get("weights") == "random":
            warnings.append(f"{kind.split('_')[0].lower()} features come from a RANDOMLY INITIALISED "
                            f"{settings.get('backbone', 'backbone')} ({sidecar}): these scores say nothing "
                            "about a trained model")
    return rows, warnings


def read_comparison(path: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of a ``comparison.csv`` written by ``evaluation.compare`` (baselines, other models)."""
    path = Path(path)
    if not path.is_file():
        raise VizError(f"{path}: comparison table not found (write it with python -m evaluation.compare)")
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    missing = [k for k in ("name", *METRIC_KEYS) if rows and k not in rows[0]]
    if not rows or missing:
        raise VizError(f"{path}: not a comparison table (missing {', '.join(missing) or 'rows'})")
    return rows


def write_report(metrics_path: str | os.PathLike, pred_dir: str | os.PathLike, data_dir: str | os.PathLike,
                 out_dir: str | os.PathLike, split: str | None = None, limit: int = 0, videos: bool = False,
                 sample: int = 0, compare: str | os.PathLike | None = None) -> Path:
    """Render the report into ``out_dir``; returns its ``index.html``.

    ``split`` defaults to the one recorded in the metrics; ``limit``: first clips only (0 = all);
    ``videos``: also render each clip's face-sketch video beside its speaker video; ``compare``: a
    ``comparison.csv`` whose rows (baselines) are shown beside the model.
    """
    metrics = read_metrics(metrics_path)
    check_pred_dir(metrics, pred_dir, metrics_path)
    split = _split_name(metrics, split, metrics_path)
    others = read_comparison(compare) if compare else []
    per_clip = metrics.get("per_clip") or {}
    scores = {clip: (frc, frd) for clip, frc, frd in zip(per_clip.get("clip", []), per_clip.get("FRC", []),
                                                         per_clip.get("FRD", []))}
    info = L.read_split(data_dir, split)
    clips = list(range(len(info)))[:limit or None]
    inputs = _check_inputs(info, pred_dir, clips)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for n, c in enumerate(clips, start=1):
        print(f"[{n}/{len(clips)}] {info.clips[c]}", file=sys.stderr)
        samples = load_samples(inputs[c])
        listener = info.clips[info.listener_index(c)]
        truth = load_attributes(L.emotion_path(data_dir, split, listener), samples.shape[1])
        speaker = L.video_path(data_dir, split, info.clips[c])
        folder = f"clips/{c:03d}"
        render_clip(samples, out / folder, truth, speaker if speaker.exists() else None, sample, videos)
        entries.append(ClipEntry(c, info.clips[c], listener, folder, s_mse(samples[None]),
                                 fr_var(samples[None]), *scores.get(info.clips[c], (None, None))))
    plot_clip_summary([str(e.index) for e in entries], np.array([e.s_mse for e in entries]),
                      np.array([e.fr_var for e in entries]), out / "summary.png")
    shutil.copyfile(metrics_path, out / "metrics.json")
    (out / "style.css").write_text(STYLE)
    for i, entry in enumerate(entries):
        prev = entries[i - 1] if i > 0 else None
        nxt = entries[i + 1] if i + 1 < len(entries) else None
        (out / entry.folder / "index.html").write_text(_clip_page(entry, prev, nxt, split, sample, videos))
    index = out / "index.html"
    details, warnings = run_details(pred_dir, metrics, split)
    index.write_text(_index_page(metrics, entries, split, pred_dir, data_dir, len(info), details, warnings,
                                 others))
    return index


def _split_name(metrics: dict, split: str | None, metrics_path: str | os.PathLike) -> str:
    recorded = metrics.get("split")
    if split and recorded and split != recorded:
        raise VizError(f"{metrics_path}: computed on split {recorded!r}, but the report asks for {split!r}")
    if not (split or recorded):
        raise VizError(f"{metrics_path}: records no split; pass --split")
    return split or recorded


def _check_inputs(info: L.Split, pred_dir: str | os.PathLike, clips: list[int]) -> dict[int, list[Path]]:
    """Prediction files of every clip and its ground-truth file, all problems listed at once."""
    problems, found = [], {}
    for c in clips:
        folder = L.prediction_path(pred_dir, info.name, info.clips[c], 0).parent
        try:
            found[c] = find_samples([folder])
        except VizError as err:
            problems.append(str(err))
        truth = L.emotion_path(info.data_dir, info.name, info.clips[info.listener_index(c)])
        if not truth.is_file():
            problems.append(f"{truth}: Emotion file of the real listener not found")
    if problems:
        raise VizError(f"{len(problems)} problem(s) with the report input:\n  " + "\n  ".join(problems))
    return found


def _page(title: str, css: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f'<link rel="stylesheet" href="{css}"></head>\n<body>\n{body}\n</body></html>\n')


def _number(value: object) -> str:
    return f"{value:.5g}" if isinstance(value, float) else escape(str(value))


def _score(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.4g}"


def _index_page(metrics: dict, entries: list[ClipEntry], split: str, pred_dir: str | os.PathLike,
                data_dir: str | os.PathLike, total: int, details: list[tuple[str, str]], warnings: list[str],
                others: list[dict[str, str]]) -> str:
    baselines = "".join(f"<th>{escape(o['name'])}</th>" for o in others)
    rows = "".join(f"<tr><th>{k}</th><td class='num'>{_number(metrics[k])}</td>"
                   + "".join(f"<td class='num'>{_number(float(o[k]))}</td>" for o in others)
                   + f"<td>{METRIC_NOTES[k][0]}</td><td>{escape(METRIC_NOTES[k][1])}</td></tr>\n"
                   for k in METRIC_KEYS)
    shown = [(k, escape(v)) for k, v in details]
    shown += [(k, _number(metrics[k])) for k in SHOWN_DETAILS if k in metrics]
    extra_rows = "".join(f"<tr><th>{escape(k)}</th><td>{v}</td></tr>\n" for k, v in shown)
    alerts = "".join(f"<p class='warn'>&#9888; {escape(w)}</p>\n" for w in warnings)
    clip_rows = "".join(
        f"<tr><td class='num'>{e.index}</td><td><a href='{e.folder}/index.html'>{escape(e.clip)}</a></td>"
        f"<td>{escape(e.listener)}</td><td class='num'>{_score(e.frc)}</td>"
        f"<td class='num'>{_score(e.frd)}</td>"
        f"<td class='num'>{e.s_mse:.4g}</td><td class='num'>{e.fr_var:.4g}</td>"
        f"<td><a href='{e.folder}/index.html'><img class='thumb' src='{e.folder}/valence_arousal.png' "
        f"alt='valence-arousal of clip {e.index}'></a></td></tr>\n" for e in entries)
    count = f"{len(entries)} of {total}" if len(entries) < total else f"all {total}"
    body = f"""<h1>REACT evaluation report</h1>
{alerts}
<p class="meta">split <b>{escape(split)}</b> &middot;
predictions <code>{escape(str(pred_dir))}</code> &middot; data <code>{escape(str(data_dir))}</code>
&middot; written {datetime.now():%Y-%m-%d %H:%M} &middot; <a href="metrics.json">metrics.json</a></p>
<h2>Metrics</h2>
<table><tr><th>metric</th><th>this run</th>{baselines}<th>better</th><th>what it measures</th></tr>
{rows}</table>
<table><tr><th>run detail</th><th>value</th></tr>
{extra_rows}</table>
<h2>Clips ({count})</h2>
<img class="plot" src="summary.png" alt="per-clip S-MSE and FRVar">
<table><tr><th>#</th><th>clip (speaker)</th><th>real listener</th><th>FRC</th><th>FRD</th><th>S-MSE</th>
<th>FRVar</th>
<th>valence-arousal</th></tr>
{clip_rows}</table>"""
    return _page(f"REACT report: {split}", "style.css", body)


def _clip_page(e: ClipEntry, prev: ClipEntry | None, nxt: ClipEntry | None, split: str, sample: int,
               video: bool) -> str:
    def link(entry: ClipEntry | None, text: str) -> str:
        return f"<a href='../{entry.index:03d}/index.html'>{text}</a>" if entry else ""

    player = (f"<h2>Face sketch (sample {sample})</h2>\n<video src='{VIDEO}' controls muted loop></video>"
              if video else "")
    figures = "".join(f"<h2>{escape(caption)}</h2>\n<img class='plot' src='{name}' alt='{escape(caption)}'>\n"
                      for name, caption in PLOTS.items())
    nav = f'<a href="../../index.html">report</a>{link(prev, "&larr; previous")}{link(nxt, "next &rarr;")}'
    body = f"""<nav>{nav}</nav>
<h1>Clip {e.index}: {escape(e.clip)}</h1>
<p class="meta">split {escape(split)} &middot; real listener {escape(e.listener)} &middot;
S-MSE {e.s_mse:.4g} &middot; FRVar {e.fr_var:.4g}</p>
{player}
{figures}"""
    return _page(f"clip {e.index}: {e.clip}", "../../style.css", body)
