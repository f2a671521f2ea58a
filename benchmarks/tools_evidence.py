"""The training-tools evidence (docs/tools.md, "Evidence"): one run regenerates every figure.

``python benchmarks/bench_tools.py evidence-all`` runs, on each generator (``frozen``:
``scripts/make_synthetic_xroom.py``, ``alt``: ``scripts/make_synthetic_xroom_alt.py``) and each of
``--sets`` generated sets (data seeds 0, 1, 2 ...), for each of ``--seeds`` (each seed draws its own
participant split, train / val / test, its label subset and its initial weights):

1. **Selection, validation participants only**: every pre-processing candidate of
   :data:`CANDIDATES` (scalers, robust features) with the bio + body late-fusion classifier, all
   labels; the candidate with the best mean validation UAR (over sets, then seeds) is chosen per
   generator and written to ``selection.json`` / ``.md`` before any test figure is computed. The
   transductive scaler is measured for reference and is not eligible.
2. **Test**, with the chosen pre-processing: bio, body, bio + body early and late fusion (all
   labels, from scratch); and, with 10 % of the labelled intervals, the late-fusion classifier from
   scratch against the same classifier fine-tuned from cross-modal VICReg pre-training on the
   training participants' unlabelled windows (``configs/tools/xroom_bio_body_crossmodal.yaml``).

Statistics use one value per independent unit: the seeds of one set share its participants, so
they are averaged within the set; comparisons are paired per-set differences, mean ± sd over sets
and a one-sample t-test with (sets - 1) degrees of freedom, per generator and over both.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import make_synthetic_xroom as gen  # noqa: E402
import make_synthetic_xroom_alt as gen_alt  # noqa: E402

from react.tools.config import load_tools_config  # noqa: E402
from react.tools.stages import STAGES, task_config  # noqa: E402

GENERATORS: dict[str, Callable[..., Path]] = {"frozen": gen.generate, "alt": gen_alt.generate}
CONFIG = ROOT / "configs" / "tools" / "xroom_bio.yaml"
MODALITIES = {"bio": "[bio]", "body": "[body]", "bio+body": "[bio,body]"}
TRAIN = "preprocess.scaler=train"
CANDIDATES: dict[str, tuple[str, ...]] = {  # pre-processing, chosen on the val participants
    "train": (TRAIN,),
    "calibration": ("preprocess.scaler=calibration",),
    "train + tonic/phasic GSR": (TRAIN, "preprocess.features=[tonic_phasic]"),
    "train + first differences": (TRAIN, "preprocess.features=[diff]"),
    "train + calibration-relative": (TRAIN, "preprocess.features=[calibration_relative]"),
    "train + robust window scaling": (TRAIN, "preprocess.window_norm=robust"),
    "train + rank window scaling": (TRAIN, "preprocess.window_norm=rank"),
}
REFERENCE = {"transductive (reference, not eligible)": ("preprocess.scaler=transductive",)}
LATE = "finetune.model.encoder.fusion=late"
FUSION_ARMS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bio": ("bio", ()), "body": ("body", ()), "early fusion": ("bio+body", ()),
    "late fusion": ("bio+body", (LATE,)),
}
SSL_ARMS = ("scratch 10 %", "SSL + fine-tuning 10 %")
CROSS_MODAL = ("ssl.model.encoder.fusion=late", "ssl.ssl.framework=vicreg", "ssl.ssl.positives=modalities")


@dataclass
class Settings:
    """The size of the evidence: data, seeds, training."""

    generators: list[str] = field(default_factory=lambda: list(GENERATORS))
    sets: int = 3
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2, 3, 4])
    select_sets: int = 3  # the selection runs on the first sets and seeds (val participants only)
    select_seeds: list[int] = field(default_factory=lambda: [0])
    participants: int = 10
    levels: int = 6
    epochs: int = 8
    ssl_epochs: int = 8
    fraction: float = 0.1
    jobs: int = 2


def tools(root: Path, out: Path, modality: str, *overrides: str):
    """The bio config on ``root`` for ``modality``, the evidence's splits and windows."""
    return load_tools_config(CONFIG, [  # candidates start from none of the config's pre-processing choices
        "preprocess.scaler=train", "preprocess.window_norm=none", "preprocess.features=[]",
        f"dataset.root={root}", f"dataset.output_dir={out}", "preprocess.val_fraction=0.2",
        "preprocess.test_fraction=0.2", "preprocess.get_stats=false", "preprocess.overlap=0.5",
        f"preprocess.modalities={MODALITIES[modality]}", *overrides])


def finetune(root: Path, out: Path, modality: str, name: str, seed: int, s: Settings,
             *overrides: str) -> dict:
    """One classifier; its test UAR / macro-F1 / accuracy and the checkpoint's val UAR."""
    cfg = tools(root, out, modality, f"finetune.seed={seed}", f"finetune.out_dir={out / 'runs' / name}",
                f"finetune.train.epochs={s.epochs}", "finetune.train.lr=1e-3", "finetune.train.batch_size=32",
                "finetune.train.keep_last=1", "finetune.train.log_every=1000000",
                "finetune.deterministic=true", *overrides)
    section = task_config(cfg, "finetune")
    from react.engine import run

    run(section)
    res = json.loads((Path(section.out_dir) / "test_results.json").read_text())
    return {k: res[k] for k in ("uar", "macro_f1", "accuracy", "val_uar")}


def unit(job: tuple) -> tuple[tuple, dict[str, dict]]:
    """One (generator, set, seed) of a phase: its arms' figures. Runs in a worker process."""
    phase, generator, data_seed, seed, prep, root, s = job
    import torch

    torch.set_num_threads(1)  # the runs are deterministic: one thread each, ``jobs`` at a time
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        split = (f"seed={seed}", *prep)
        if phase == "select":
            for name, extra in {**CANDIDATES, **REFERENCE}.items():
                folder = base / str(len(out))
                STAGES["preprocess"](tools(root, folder, "bio+body", *split, *extra))
                figures = finetune(root, folder, "bio+body", "late", seed, s, *split, *extra, LATE)
                out[name] = {"val_uar": figures["val_uar"]}  # the selection keeps no test figure
            return (phase, generator, data_seed, seed), out
        for modality in MODALITIES:
            STAGES["preprocess"](tools(root, base, modality, *split))
        for arm, (modality, extra) in FUSION_ARMS.items():
            out[arm] = finetune(root, base, modality, arm.replace(" ", "_"), seed, s, *split, *extra)
        STAGES["ssl-train"](tools(root, base, "bio+body", *split, f"ssl.seed={seed}",
                                  f"ssl.train.epochs={s.ssl_epochs}", "ssl.train.lr=1e-3",
                                  "ssl.train.batch_size=256", "ssl.train.log_every=1000000",
                                  "ssl.deterministic=true", *CROSS_MODAL))
        few = (f"finetune.data.label_fraction={s.fraction}", "finetune.data.label_unit=interval", LATE)
        out[SSL_ARMS[0]] = finetune(root, base, "bio+body", "scratch10", seed, s, *split, *few)
        out[SSL_ARMS[1]] = finetune(root, base, "bio+body", "ssl10", seed, s, *split, *few,
                                    "finetune.model.weights=auto")
    return (phase, generator, data_seed, seed), out


def run_phase(phase: str, s: Settings, roots: dict, preps: dict[str, tuple[str, ...]]) -> dict:
    """``{generator: {set: {seed: {arm: figures}}}}`` for every unit of ``phase``."""
    sets, seeds = (s.select_sets, s.select_seeds) if phase == "select" else (s.sets, s.seeds)
    jobs = [(phase, g, d, seed, preps.get(g, ()), roots[(g, d)], s)
            for g in s.generators for d in range(sets) for seed in seeds]
    results: dict = {}
    with ProcessPoolExecutor(max_workers=s.jobs) as pool:
        for (_, g, d, seed), arms in pool.map(unit, jobs):
            results.setdefault(g, {}).setdefault(d, {})[seed] = arms
            key = "val_uar" if phase == "select" else "uar"
            print(f"{phase} {g} set {d} seed {seed} ({key}): "
                  + ", ".join(f"{a} {m[key]:.3f}" for a, m in arms.items()), flush=True)
    return results


# ----- statistics: one value per generated set -------------------------------------------------------
def set_means(per_set: dict, arm: str, key: str = "uar") -> list[float]:
    """The mean over seeds of ``arm``'s ``key`` in each set (the independent units)."""
    return [statistics.mean(seeds[seed][arm][key] for seed in seeds) for seeds in per_set.values()]


def paired(differences: list[float]) -> dict:
    """Mean ± sd of per-set paired differences, a one-sample t-test (df = sets - 1), sets ahead."""
    n = len(differences)
    sd = statistics.stdev(differences) if n > 1 else float("nan")
    t, p = stats.ttest_1samp(differences, 0.0) if n > 1 and sd > 0 else (float("nan"), float("nan"))
    return {"differences": differences, "mean": statistics.mean(differences), "sd": sd, "t": float(t),
            "df": n - 1, "p": float(p), "ahead": sum(d > 0 for d in differences), "sets": n}


def comparisons(per_set: dict) -> dict[str, dict]:
    """Fusion against each single modality and against the better one on validation (per set), and
    SSL against scratch: paired per-set differences of test UAR."""
    uar = {arm: set_means(per_set, arm) for arm in (*FUSION_ARMS, *SSL_ARMS)}
    val = {arm: set_means(per_set, arm, "val_uar") for arm in ("bio", "body")}
    better = [b if vb >= vy else y for b, y, vb, vy in zip(uar["bio"], uar["body"], val["bio"], val["body"])]
    out = {}
    for fusion in ("early fusion", "late fusion"):
        for single, values in (("bio", uar["bio"]), ("body", uar["body"]), ("the better single modality "
                                                                             "(chosen on val)", better)):
            out[f"{fusion} - {single}"] = paired([f - v for f, v in zip(uar[fusion], values)])
    ssl, scratch = uar[SSL_ARMS[1]], uar[SSL_ARMS[0]]
    out["SSL + fine-tuning - scratch (10 %)"] = paired([a - b for a, b in zip(ssl, scratch)])
    return out


def spread(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def choose(selection: dict) -> tuple[dict[str, str], dict]:
    """Per generator, the eligible candidate with the best mean val UAR (mean over sets of the set
    means); and the default scaler (train or calibration) by the mean over both generators."""
    table = {g: {c: set_means(per_set, c, "val_uar") for c in (*CANDIDATES, *REFERENCE)}
             for g, per_set in selection.items()}
    chosen = {g: max(CANDIDATES, key=lambda c: statistics.mean(rows[c])) for g, rows in table.items()}
    pooled = {c: statistics.mean(v for rows in table.values() for v in rows[c])
              for c in ("train", "calibration")}
    return chosen, {"table": table, "default_scaler": max(pooled, key=pooled.get),
                    "default_pooled_val": pooled}


def selection_markdown(choice: dict, chosen: dict[str, str], s: Settings) -> str:
    gens = list(choice["table"])
    lines = [f"Validation UAR (val participants only; bio + body, late fusion, all labels, "
             f"{len(s.select_seeds)} seeds x {s.select_sets} set(s); mean ± sd over the per-set means)", "",
             "| pre-processing | " + " | ".join(gens) + " |", "| --- |" + " --- |" * len(gens)]
    for c in (*CANDIDATES, *REFERENCE):
        cells = [spread(choice["table"][g][c]) for g in gens]
        cells = [f"**{x}**" if chosen[g] == c else x for g, x in zip(gens, cells)]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    lines += ["", "Chosen (bold): " + "; ".join(f"{g}: {c}" for g, c in chosen.items())
              + f". Default scaler of the configs (train or calibration, mean over both generators): "
              f"{choice['default_scaler']} ("
              + ", ".join(f"{k} {v:.3f}" for k, v in choice["default_pooled_val"].items()) + ")."]
    return "\n".join(lines) + "\n"


def test_markdown(test: dict, chosen: dict[str, str], s: Settings) -> tuple[str, dict]:
    lines = []
    for g, per_set in test.items():
        lines += [f"**Generator {g}** (pre-processing chosen on validation: {chosen[g]}). Test UAR, "
                  f"mean ± sd over {len(s.seeds)} seeds (participant splits) per set; last row: mean ± sd "
                  f"of the {len(per_set)} set means", "",
                  "| set | " + " | ".join((*FUSION_ARMS, *SSL_ARMS)) + " |",
                  "| --- |" + " --- |" * (len(FUSION_ARMS) + len(SSL_ARMS))]
        for d, seeds in per_set.items():
            lines.append(f"| {d} | " + " | ".join(spread([seeds[x][a]["uar"] for x in seeds])
                                                   for a in (*FUSION_ARMS, *SSL_ARMS)) + " |")
        lines.append("| sets | " + " | ".join(spread(set_means(per_set, a))
                                              for a in (*FUSION_ARMS, *SSL_ARMS)) + " |")
        lines.append("")
    lines += ["Paired per-set differences of test UAR (one value per generated set): mean ± sd, one-sample "
              "t-test, sets ahead", "", "| comparison | " + " | ".join([*test, "both"]) + " |",
              "| --- |" + " --- |" * (len(test) + 1)]
    both = {"both": {f"{g}/{d}": seeds for g, per_set in test.items() for d, seeds in per_set.items()}}
    table = {g: comparisons(per_set) for g, per_set in {**test, **both}.items()}
    for name in table["both"]:
        cells = [f"{c['mean']:+.3f} ± {c['sd']:.3f}, t({c['df']}) = {c['t']:.2f}, p = {c['p']:.2f}, "
                 f"{c['ahead']}/{c['sets']}" for c in (table[g][name] for g in table)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", table


def evidence_all(s: Settings, out_dir: Path) -> dict:
    """Generate the sets, select on validation, write the choice, then test; write JSON + markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        roots = {(g, d): GENERATORS[g](Path(tmp) / g / str(d) / "XRoom", s.participants, 1, s.levels, d)
                 for g in s.generators for d in range(s.sets)}
        selection = run_phase("select", s, roots, {})
        chosen, choice = choose(selection)
        record = {"settings": s.__dict__, "selection": selection, "choice": choice, "chosen": chosen,
                  "written_before_test": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
        (out_dir / "selection.json").write_text(json.dumps(record, indent=1) + "\n")
        (out_dir / "selection.md").write_text(selection_markdown(choice, chosen, s))
        print(selection_markdown(choice, chosen, s), flush=True)
        preps = {g: CANDIDATES[c] for g, c in chosen.items()}
        test = run_phase("test", s, roots, preps)
    markdown, table = test_markdown(test, chosen, s)
    minutes = (time.time() - started) / 60
    result = {**record, "test": test, "comparisons": table, "minutes": minutes}
    (out_dir / "evidence.json").write_text(json.dumps(result, indent=1) + "\n")
    (out_dir / "evidence.md").write_text(markdown + f"\n({minutes:.0f} min, {s.jobs} worker(s))\n")
    print(markdown, flush=True)
    return result
