"""Task ``ser``: speech-emotion recognition on RAVDESS and/or CREMA-D, speaker-independent.

Each dataset is split by actor (seeded, sex-balanced; or k-fold by actor), then the splits are
merged; the actor lists go to ``<run_dir>/splits.json`` and are reused when present, so a test run
evaluates exactly the speakers that training never saw. Training crops and augments waveforms;
validation and test use whole, clean utterances.

Two evaluation protocols (``data.protocol``; docs/ser.md):

- ``inductive`` (default): a prediction uses the utterance being classified and what was learned
  from the training speakers, nothing else (``model.normalization`` utterance or population; the
  population statistics come from the training speakers' audio).
- ``speaker-adapted``: every speaker has ``data.enrol_per_speaker`` enrolment recordings drawn by
  :func:`react.data.ser_corpus.enrolment_split` (seeded, optionally of one emotion); a
  ``normalization=speaker`` model is standardised by their statistics, and the enrolment recordings
  of validation and test speakers are never evaluated.

``test`` writes the report (see :mod:`react.ser.report`), naming the protocol, with the classic
baseline (:mod:`react.ser.baseline`) trained on the same training actors and given the same
information beside the model (speaker-adapted runs add the baseline z-scored per speaker by the
same enrolment recordings). K-fold by actor over all folds: :mod:`react.ser.kfold`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from react.config import ConfigError, RunConfig
from react.data.augment import AugmentConfig, WaveAugment
from react.data.ser_corpus import (
    AudioCache,
    CorpusError,
    Utterance,
    enrolment_split,
    label_space,
    scan_cremad,
    scan_ravdess,
    select_emotions,
    speaker_split,
)
from react.data.ser_dataset import IGNORE, SERDataset, collate
from react.models.ser import SSL_TRAINING_FIELDS, Frontend, SERModel, SERModelConfig
from react.models.specaugment import SpecAugment
from react.models.ssl_audio import FAMILIES
from react.pretrained import load_ssl_weights, ssl_architecture
from react.ser import classic
from react.ser.inference import classify, speaker_norm
from react.tasks.protocol import RunPaths
from react.utils.io import save_json
from react.utils.logging import get_logger

log = get_logger(__name__)
SPLITS_FILE = "splits.json"
PROTOCOLS = ("inductive", "speaker-adapted")


@dataclass
class SERDataConfig:
    root: str = "data/synthetic_ravdess"  # RAVDESS folder with Actor_XX/ ("" = not used)
    cremad_root: str = ""  # CREMA-D AudioWAV folder ("" = not used)
    cremad_demographics: str = ""  # CREMA-D VideoDemographics.csv (sex of each actor)
    include_song: bool = False  # RAVDESS song files (vocal channel 02) too
    emotions: str = "all8"  # all8 | basic6 | basic4 | cremad6: the one label space of all datasets
    sample_rate: int = 16000
    max_seconds: float = 3.0  # training crop length (random position); evaluation uses whole files
    val_fraction: float = 0.15  # of each dataset's actors
    test_fraction: float = 0.15
    kfold: int = 0  # > 1: k-fold by actor, fold `fold` is the test set
    fold: int = -1  # with kfold > 1: the test fold; -1 = every fold (train.py runs them all)
    cache_audio: bool = True  # keep decoded audio in memory
    protocol: str = "inductive"  # inductive | speaker-adapted (enrolment recordings per speaker)
    enrol_per_speaker: int = 8  # speaker-adapted: enrolment recordings per speaker, drawn at random
    enrol_emotion: str = ""  # speaker-adapted: draw them from this emotion only (e.g. neutral); "" = any


@dataclass
class SERLossConfig:
    class_weights: bool = False  # inverse class frequency of the training split
    label_smoothing: float = 0.0


@dataclass
class SERReportConfig:
    copy_misclassified: bool = False  # copy misclassified test wavs into report/misclassified/
    eval_batch_size: int = 16
    baseline: bool = True  # eGeMAPS functionals + logistic regression on the same training actors
    baseline_cache_dir: str = ""  # functionals cache ("" = ~/.cache/react/egemaps_functionals)


@dataclass
class Config(RunConfig):
    task: str = "ser"
    data: SERDataConfig = field(default_factory=SERDataConfig)
    model: SERModelConfig = field(default_factory=SERModelConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    loss: SERLossConfig = field(default_factory=SERLossConfig)
    report: SERReportConfig = field(default_factory=SERReportConfig)


def _typed(section: Any) -> Any:
    """The dataclass instance behind a structured config section."""
    return OmegaConf.to_object(section) if isinstance(section, DictConfig) else section


class Task:
    """Engine hooks for speech emotion (the contract: :mod:`react.tasks.protocol`)."""

    monitor = "val/uar"
    monitor_mode = "max"

    def __init__(self, cfg: DictConfig, paths: RunPaths):
        self.cfg = cfg
        self.paths = paths
        self.run_dir = paths.run_dir
        self.classes = label_space(cfg.data.emotions)
        self.audio = AudioCache(cfg.data.sample_rate, cfg.data.cache_audio)
        self._class_weights: torch.Tensor | None = None
        if cfg.data.protocol not in PROTOCOLS:
            raise ConfigError(f"data.protocol '{cfg.data.protocol}' not in {', '.join(PROTOCOLS)}")
        if cfg.model.normalization == "speaker" and not self.adapted:
            raise ConfigError("model.normalization=speaker needs the speaker's enrolment recordings: set "
                              "data.protocol=speaker-adapted, or use normalization utterance or population "
                              "(inductive)")

    @property
    def adapted(self) -> bool:
        """Whether the run follows the speaker-adapted protocol."""
        return self.cfg.data.protocol == "speaker-adapted"

    # ----- data -----------------------------------------------------------------------------
    def _corpora(self) -> dict[str, list[Utterance]]:
        d = self.cfg.data
        corpora = {}
        if d.root:
            corpora["ravdess"] = scan_ravdess(d.root, d.include_song)
        if d.cremad_root:
            corpora["cremad"] = scan_cremad(d.cremad_root, d.cremad_demographics or None)
        if not corpora:
            raise ConfigError("data.root (RAVDESS) and data.cremad_root (CREMA-D) are both empty")
        everything = select_emotions([u for us in corpora.values() for u in us], self.classes)
        return {name: [u for u in everything if u.dataset == name] for name in corpora}

    @cached_property
    def splits(self) -> dict[str, list[Utterance]]:
        """Utterances of ``train``/``val``/``test``, no actor in two splits."""
        d = self.cfg.data
        corpora = self._corpora()
        if d.kfold > 1 and d.fold < 0:
            raise ConfigError(f"data.kfold={d.kfold} with data.fold={d.fold} means every fold: run them with "
                              "train.py, or pick one with data.fold=0..")
        params = {"seed": self.cfg.seed, "val_fraction": d.val_fraction, "test_fraction": d.test_fraction,
                  "kfold": d.kfold, "fold": d.fold if d.kfold > 1 else 0, "datasets": sorted(corpora)}
        saved = self._splits_file()
        if saved.is_file():
            stored = json.loads(saved.read_text())
            actors = stored["actors"]
            known = {u.actor for us in corpora.values() for u in us}
            unknown = sorted({a for per in actors.values() for s in per.values() for a in s} - known)
            if unknown:
                raise CorpusError(f"{saved}: actors {', '.join(unknown)} are not in the corpus")
            before = stored["params"]
            changed = {k: (before.get(k), v) for k, v in params.items() if before.get(k) != v}
            if changed and self.cfg.mode == "train":
                raise CorpusError(f"{saved}: the speaker splits of this run were made with other settings "
                                  f"(saved vs now: {changed}); use another out_dir, or delete the file "
                                  "to split again")
            note = f" (made with other settings, saved vs now: {changed})" if changed else ""
            log.log(logging.WARNING if changed else logging.INFO, "using the saved speaker splits of %s%s",
                    saved, note)
        else:
            if self.cfg.mode == "test":
                log.warning("no saved speaker splits found (%s): splitting again from the seed; the test "
                            "actors are unseen only if the training run used the same settings", saved)
            actors = {name: speaker_split(us, d.val_fraction, d.test_fraction, self.cfg.seed, d.kfold, d.fold)
                      for name, us in corpora.items()}
            save_json({"params": params, "actors": actors}, saved)
        result = {}
        for split in ("train", "val", "test"):
            chosen = {a for per in actors.values() for a in per[split]}
            result[split] = [u for us in corpora.values() for u in us if u.actor in chosen]
        for split, us in result.items():
            log.info("%s: %d utterances of %d actors", split, len(us), len({u.actor for u in us}))
        return result

    def _splits_file(self) -> Path:
        """The run's ``splits.json``; in test mode the one saved in the tested checkpoint's run."""
        trained = self.paths.trained_dir
        if trained is not None and (trained / SPLITS_FILE).is_file():
            return trained / SPLITS_FILE
        return self.run_dir / SPLITS_FILE

    @cached_property
    def enrolment(self) -> dict[str, list[Utterance]]:
        """Speaker-adapted protocol: actor (of every split) -> its enrolment recordings; else empty."""
        if not self.adapted:
            return {}
        d = self.cfg.data
        enrol, _ = enrolment_split([u for us in self.splits.values() for u in us], d.enrol_per_speaker,
                                   self.cfg.seed, d.enrol_emotion)
        return enrol

    def evaluated(self, split: str) -> list[Utterance]:
        """The utterances of ``split`` that are classified: all of them, less the enrolment
        recordings under the speaker-adapted protocol (training uses every training utterance)."""
        enrolled = {u.path for us in self.enrolment.values() for u in us}
        return [u for u in self.splits[split] if split == "train" or u.path not in enrolled]

    @property
    def classic(self) -> bool:
        """Whether the model is the classic eGeMAPS + logistic regression (:mod:`react.ser.classic`)."""
        return self.cfg.model.encoder == classic.ENCODER

    def _raw_features(self) -> Callable:
        """The model's un-normalised features, whose statistics are ``norm`` (weights not needed)."""
        m, sample_rate = self.cfg.model, self.cfg.data.sample_rate
        if self.classic:
            return classic.ClassicSER(len(self.classes), sample_rate, m.normalization).raw_features
        return Frontend(sample_rate, m.n_mels, m.descriptors).raw

    def _functionals(self, utterances: list[Utterance]) -> np.ndarray:
        """The eGeMAPS functionals of ``utterances`` (cached per file, :mod:`react.ser.baseline`)."""
        from react.ser import baseline

        cache = baseline.FunctionalsCache(self.cfg.report.baseline_cache_dir or None,
                                          self.cfg.data.sample_rate, self.audio)
        return cache.many([u.path for u in utterances])

    @cached_property
    def speaker_norms(self) -> dict[str, np.ndarray] | None:
        """Actor -> mean and std of each log-mel band (and acoustic descriptor) over the actor's
        enrolment recordings, when the model normalises by speaker; else None."""
        if self.cfg.model.normalization != "speaker":
            return None
        frontend = self._raw_features()
        batch = self.cfg.report.eval_batch_size
        return {actor: speaker_norm(frontend, [self.audio(u.path) for u in us], batch)
                for actor, us in sorted(self.enrolment.items())}

    def population_norm(self) -> np.ndarray:
        """Mean and std of each log-mel band (and descriptor) over all training utterances: the
        statistics of a ``normalization=population`` model."""
        return speaker_norm(self._raw_features(), [self.audio(u.path) for u in self.splits["train"]],
                            self.cfg.report.eval_batch_size)

    def protocol(self) -> dict[str, Any]:
        """The report's ``protocol`` entry: its name and rule (and the test speakers' enrolment)."""
        if not self.adapted:
            return {"name": "inductive",
                    "rule": "each utterance is classified on its own; statistics come from the training "
                            "speakers only"}
        d = self.cfg.data
        test_actors = {u.actor for u in self.splits["test"]}
        return {"name": "speaker-adapted",
                "rule": f"{d.enrol_per_speaker} enrolment recordings per speaker "
                        f"({d.enrol_emotion or 'any emotion'}), drawn at random (seed {self.cfg.seed} and "
                        "the actor's name), never evaluated",
                "enrol_per_speaker": d.enrol_per_speaker, "enrol_emotion": d.enrol_emotion,
                "enrolment": {a: [u.path for u in us] for a, us in self.enrolment.items()
                              if a in test_actors}}

    def _dataset(self, split: str) -> SERDataset:
        utterances = self.evaluated(split)
        if not utterances:
            raise CorpusError(f"the {split} split is empty: raise data.{split}_fraction or add actors")
        if split == "train":
            augment = WaveAugment(self.cfg.augment, self.cfg.data.sample_rate)
            return SERDataset(utterances, self.classes, self.audio, augment, self.cfg.data.max_seconds,
                              self.speaker_norms)
        return SERDataset(utterances, self.classes, self.audio, norms=self.speaker_norms)

    def train_dataset(self) -> SERDataset:
        return self._dataset("train")

    def collate(self, items: list) -> dict[str, torch.Tensor]:
        return collate(items)

    # ----- model and loss -------------------------------------------------------------------
    def build_model(self, pretrained: bool = True) -> nn.Module:
        """The SER model; an SSL encoder's architecture is read once from ``model.weights`` (or
        the tiny random one) into ``model.ssl_arch``, and its weights loaded when ``pretrained``;
        the classic model is fitted on the training speakers when ``pretrained``."""
        m, sample_rate = self.cfg.model, self.cfg.data.sample_rate
        if self.classic:
            return self._classic_model(pretrained)
        ssl = m.encoder in FAMILIES
        if ssl and sample_rate != 16000:
            raise ConfigError(f"SSL encoders take 16 kHz audio, data.sample_rate is {sample_rate}")
        a = self.cfg.augment
        specaug = SpecAugment(a.p_specaug, a.time_masks, a.time_mask_frac, a.freq_masks, a.freq_mask_width)
        try:
            if ssl and not m.ssl_arch:
                extra = dict(m.random_init_config) if m.random_init else {}
                m.ssl_arch = ssl_architecture(m.encoder, m.weights or None, m.random_init,
                                              **SSL_TRAINING_FIELDS, **extra)
            model = SERModel(_typed(m), len(self.classes), sample_rate, specaug)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if pretrained and m.normalization == "population":  # a checkpoint brings its own
            model.set_population_norm(self.population_norm())
        if ssl and pretrained and not m.random_init:
            load_ssl_weights(model.encoder.model, m.encoder, m.weights)
        return model

    def _classic_model(self, fit: bool) -> classic.ClassicSER:
        """The classic model, fitted on the training utterances' functionals when ``fit`` (each
        z-scored by its speaker's enrolment statistics under ``normalization=speaker``)."""
        try:
            model = classic.ClassicSER(len(self.classes), self.cfg.data.sample_rate,
                                       self.cfg.model.normalization)
        except ValueError as err:
            raise ConfigError(str(err)) from None
        if fit:
            train = self.splits["train"]
            x = self._functionals(train)
            if model.speaker_norm:
                norms = np.stack([self.speaker_norms[u.actor] for u in train])
                x = (x - norms[:, 0]) / norms[:, 1]
            model.fit(x, np.array([self.classes.index(u.emotion) for u in train]), self.cfg.seed)
        return model

    def class_weights(self) -> torch.Tensor | None:
        """Inverse-frequency weights of the training labels (mean 1), when enabled."""
        if not self.cfg.loss.class_weights:
            return None
        if self._class_weights is None:
            counts = np.bincount(self._dataset("train").labels(), minlength=len(self.classes)).astype(float)
            weights = np.where(counts > 0, counts.sum() / np.maximum(counts, 1) / len(self.classes), 0.0)
            self._class_weights = torch.tensor(weights / weights[counts > 0].mean(), dtype=torch.float32)
        return self._class_weights

    def training_step(self, model: nn.Module, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        out = model(batch["wave"], batch["mask"], norm=batch.get("norm"))
        logits = out["logits"].float()
        weights = self.class_weights()
        loss = nn.functional.cross_entropy(logits, batch["label"],
                                           weight=None if weights is None else weights.to(logits.device),
                                           label_smoothing=self.cfg.loss.label_smoothing)
        scalars = {"emotion_loss": loss.item(),
                   "acc": (logits.argmax(-1) == batch["label"]).float().mean().item()}
        known = batch["sex"] != IGNORE
        if "sex_logits" in out and bool(known.any()):
            sex_loss = nn.functional.cross_entropy(out["sex_logits"].float(), batch["sex"],
                                                   ignore_index=IGNORE)
            loss = loss + self.cfg.model.aux_sex_weight * sex_loss
            scalars["sex_loss"] = sex_loss.item()
        return loss, scalars

    # ----- evaluation -----------------------------------------------------------------------
    def _evaluate(self, model: nn.Module, split: str) -> tuple[SERDataset, np.ndarray]:
        dataset = self._dataset(split)
        return dataset, classify(model, dataset.waves(), self.cfg.report.eval_batch_size,
                                 dataset.speaker_norms())

    def validate(self, model: nn.Module, accelerator: Any) -> dict[str, float]:
        from react.ser.report import classification_metrics

        dataset, probs = self._evaluate(model, "val")
        labels = dataset.labels()
        metrics = classification_metrics(labels, probs, list(self.classes))
        nll = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean()
        return {"val/loss": float(nll), "val/accuracy": metrics["accuracy"], "val/uar": metrics["uar"],
                "val/macro_f1": metrics["macro_f1"]}

    def classic_baselines(self, test: SERDataset) -> dict[str, dict[str, Any]]:
        """eGeMAPS functionals + standardised logistic regression, trained on this run's training
        actors and scored on ``test`` (accuracy, UAR, macro-F1) under the run's protocol:
        ``baseline`` with the training actors' scaler; under speaker-adapted also
        ``baseline_speaker_adapted``, every speaker's functionals z-scored by its enrolment ones."""
        from react.ser import baseline
        from react.ser.report import classification_metrics

        train = self.splits["train"]
        train_x, test_x = self._functionals(train), self._functionals(test.utterances)
        train_y = np.array([self.classes.index(u.emotion) for u in train])
        inputs = {"baseline": (baseline.NAME, train_x, test_x)}
        if self.adapted:
            enrol = {a: self._functionals(us) for a, us in self.enrolment.items()}
            inputs["baseline_speaker_adapted"] = (
                baseline.NAME_SPEAKER,
                baseline.speaker_standardised(train_x, [u.actor for u in train], enrol),
                baseline.speaker_standardised(test_x, [u.actor for u in test.utterances], enrol))
        results = {}
        for key, (name, x, y) in inputs.items():
            probs = baseline.fit_predict(x, train_y, y, len(self.classes), self.cfg.seed)
            m = classification_metrics(test.labels(), probs, list(self.classes))
            results[key] = {"name": name, "n_train": len(train),
                            **{k: m[k] for k in ("accuracy", "uar", "macro_f1")}}
        return results

    def test(self, model: nn.Module, accelerator: Any) -> dict:
        from react.ser.report import write_report

        dataset, probs = self._evaluate(model, "test")
        classic = self.classic_baselines(dataset) if self.cfg.report.baseline else {}
        protocol = self.protocol()
        metrics = write_report(self.run_dir, dataset.labels(), probs, list(self.classes),
                               [u.path for u in dataset.utterances], self.cfg.report.copy_misclassified,
                               classic, protocol)
        actors = sorted({u.actor for u in dataset.utterances})
        log.info("test, %s protocol (%d utterances, %d unseen actors): accuracy %.4f, UAR %.4f, "
                 "macro-F1 %.4f (chance UAR %.4f)", protocol["name"], metrics["n"], len(actors),
                 metrics["accuracy"], metrics["uar"], metrics["macro_f1"], metrics["chance_uar"])
        for result in classic.values():
            log.info("classic baseline (%s, same training actors): accuracy %.4f, UAR %.4f, macro-F1 %.4f",
                     result["name"], result["accuracy"], result["uar"], result["macro_f1"])
        keys = ("n", "accuracy", "uar", "macro_f1", "chance_uar")
        return {**{k: metrics[k] for k in keys}, "protocol": protocol["name"],
                "report": str(self.run_dir / "report"),
                "test_actors": actors, **classic}
