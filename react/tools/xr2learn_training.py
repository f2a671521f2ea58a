"""The training blocks of the reference ``configuration.json`` mapped onto the tools' stage sections.

- ``encoder_config``: ``class_name`` (CNN1D, MLP, Transformer) and ``kwargs`` -> ``ssl.model.encoder``
  and ``finetune.model.encoder``; ``pretrained_same_experiment`` / ``pretrained`` ->
  ``finetune.model.weights`` (``auto`` / that path); ``input_type`` -> every stage's input folder.
- ``ssl_config``: ``ssl_framework``, ``kwargs.temperature`` -> ``ssl.ssl``; ``epochs``,
  ``batch_size``, ``kwargs.lr``, ``kwargs.optimizer_name_ssl`` -> ``ssl.train``; ``n_views`` must be 2.
- ``sup_config``: ``epochs``, ``batch_size``, ``kwargs.lr``, ``kwargs.optimizer_name`` ->
  ``finetune.train``; ``dense_neurons``, ``dropout``, ``kwargs.freeze_encoder`` -> ``finetune.model``;
  ``kwargs.class_weights`` -> ``finetune.loss.class_weights``.
- ``augmentations``: ``<name>.probability`` and ``kwargs`` -> ``ssl.augment.<name>`` (unlisted ones
  off); also ``finetune.augment`` with ``sup_config.use_augmentations_in_sup``.
- ``transforms``: to_tensor, permutation, to_float are what the loaders do anyway.

``from_module``, ``save_last_encoder`` and ``inference_config`` concern the reference code or the
inference tools and are accepted as they are. Any other key is a :class:`ConfigError` naming it.
"""

from __future__ import annotations

from typing import Any

from react.config import ConfigError
from react.data.ts_augment import AUGMENTATIONS, TSAugmentConfig

ENCODER_NAMES = {"CNN1D": "cnn1d", "MLP": "mlp", "Transformer": "transformer"}
ENCODER_KWARGS = ("in_channels", "len_seq", "out_channels", "kernel_sizes", "stride")
ACCEPTED = ("from_module", "save_last_encoder")
TRANSFORMS = ("to_tensor", "permutation", "to_float")


def _check(block: Any, valid: tuple[str, ...], where: str, source: str) -> dict:
    if not isinstance(block, dict):
        raise ConfigError(f"{source}: '{where}' must be an object, got {type(block).__name__}")
    unknown = [k for k in block if k not in valid]
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {', '.join(f'{where}.{k}' for k in unknown)}. "
                          f"Valid keys here: {', '.join(valid)}")
    return block


def _encoder(block: dict, where: str, source: str) -> tuple[dict, dict]:
    """(encoder overrides, other stage overrides) of ``encoder_config``."""
    valid = ("class_name", "input_type", "kwargs", "pretrained_same_experiment", "pretrained", *ACCEPTED)
    _check(block, valid, where, source)
    encoder = dict(_check(block.get("kwargs", {}), ENCODER_KWARGS, f"{where}.kwargs", source))
    if "class_name" in block:
        name = block["class_name"]
        if name not in ENCODER_NAMES:
            raise ConfigError(f"{source}: {where}.class_name {name!r} not handled here; valid: "
                              f"{', '.join(ENCODER_NAMES)}")
        encoder["name"] = ENCODER_NAMES[name]
    weights = {}
    if block.get("pretrained"):
        weights = {"weights": block["pretrained"]}
    elif block.get("pretrained_same_experiment"):
        weights = {"weights": "auto"}
    extra: dict[str, Any] = {"finetune": {"model": weights}} if weights else {}
    if "input_type" in block:
        extra = _merge(extra, _input_type(block["input_type"]))
    return encoder, extra


def _input_type(folder: str) -> dict:
    return {"ssl": {"data": {"input_type": folder}}, "ssl_features": {"input_type": folder},
            "finetune": {"data": {"inputs": [folder]}}}


def _ssl(block: dict, where: str, source: str) -> dict:
    _check(block, ("ssl_framework", "input_type", "epochs", "batch_size", "kwargs", *ACCEPTED), where, source)
    kwargs = _check(block.get("kwargs", {}), ("lr", "n_views", "temperature", "optimizer_name_ssl"),
                    f"{where}.kwargs", source)
    if kwargs.get("n_views", 2) != 2:
        raise ConfigError(f"{source}: {where}.kwargs.n_views is {kwargs['n_views']}; two views are supported")
    out: dict[str, Any] = {"ssl": {}, "train": {}, "data": {}}
    if "ssl_framework" in block:
        out["ssl"]["framework"] = str(block["ssl_framework"]).lower()
    if "temperature" in kwargs:
        out["ssl"]["temperature"] = kwargs["temperature"]
    if "input_type" in block:
        out["data"]["input_type"] = block["input_type"]
    out["train"].update({k: block[k] for k in ("epochs", "batch_size") if k in block})
    out["train"].update({"lr": kwargs["lr"]} if "lr" in kwargs else {})
    out["train"].update({"optimizer": kwargs["optimizer_name_ssl"]} if "optimizer_name_ssl" in kwargs else {})
    return {"ssl": out}


def _sup(block: dict, where: str, source: str) -> tuple[dict, bool]:
    """(finetune overrides, use_augmentations_in_sup)."""
    valid = ("input_type", "epochs", "batch_size", "use_augmentations_in_sup", "dense_neurons", "dropout",
             "kwargs")
    _check(block, valid, where, source)
    kwargs = _check(block.get("kwargs", {}), ("lr", "optimizer_name", "freeze_encoder", "class_weights"),
                    f"{where}.kwargs", source)
    train = {k: block[k] for k in ("epochs", "batch_size") if k in block}
    train.update({"lr": kwargs["lr"]} if "lr" in kwargs else {})
    train.update({"optimizer": kwargs["optimizer_name"]} if "optimizer_name" in kwargs else {})
    model = {k: block[k] for k in ("dense_neurons", "dropout") if k in block}
    model.update({"freeze_encoder": kwargs["freeze_encoder"]} if "freeze_encoder" in kwargs else {})
    out: dict[str, Any] = {"train": train, "model": model}
    if "class_weights" in kwargs:
        out["loss"] = {"class_weights": kwargs["class_weights"]}
    if "input_type" in block:
        out["data"] = {"inputs": [block["input_type"]]}
    return {"finetune": out}, bool(block.get("use_augmentations_in_sup", False))


def _augmentations(block: dict, where: str, source: str) -> dict:
    """Every augmentation: the listed ones with their settings, the others off."""
    _check(block, AUGMENTATIONS, where, source)
    defaults = TSAugmentConfig()
    out: dict[str, dict] = {}
    for name in AUGMENTATIONS:
        spec = _check(block.get(name, {"probability": 0.0}), ("probability", "kwargs"), f"{where}.{name}",
                      source)
        valid = tuple(k for k in vars(getattr(defaults, name)) if k != "probability")
        kwargs = _check(spec.get("kwargs", {}), valid, f"{where}.{name}.kwargs", source)
        out[name] = {"probability": spec.get("probability", 1.0), **kwargs}
    return out


def _transforms(block: Any, where: str, source: str) -> None:
    if not isinstance(block, list):
        raise ConfigError(f"{source}: '{where}' must be a list, got {type(block).__name__}")
    for i, item in enumerate(block):
        _check(item, ("class_name", "from_module", "transform_name", "in_test", "kwargs"), f"{where}[{i}]",
               source)
        name = item.get("transform_name")
        if name not in TRANSFORMS:
            raise ConfigError(f"{source}: {where}[{i}].transform_name {name!r} not handled here; the loaders "
                              f"already do {', '.join(TRANSFORMS)}")


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for key, value in b.items():
        nested = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = _merge(out[key], value) if nested else value
    return out


def map_training(blocks: dict[str, Any], prefix: str, source: str) -> dict[str, Any]:
    """Overrides of the tools' ``ssl``, ``ssl_features`` and ``finetune`` sections from one modality's
    training blocks (``prefix``: ``shimmer.`` and the like when the file has several modalities)."""
    out: dict[str, Any] = {}
    if "encoder_config" in blocks:
        encoder, extra = _encoder(blocks["encoder_config"], f"{prefix}encoder_config", source)
        model = {"model": {"encoder": encoder}}
        out = _merge(out, {"ssl": model, "finetune": model})
        out = _merge(out, extra)
    if "ssl_config" in blocks:
        out = _merge(out, _ssl(blocks["ssl_config"], f"{prefix}ssl_config", source))
    augment_in_sup = False
    if "sup_config" in blocks:
        sup, augment_in_sup = _sup(blocks["sup_config"], f"{prefix}sup_config", source)
        out = _merge(out, sup)
    if "augmentations" in blocks:
        augment = _augmentations(blocks["augmentations"], f"{prefix}augmentations", source)
        out = _merge(out, {"ssl": {"augment": augment}})
        if augment_in_sup:
            out = _merge(out, {"finetune": {"augment": augment}})
    if "transforms" in blocks:
        _transforms(blocks["transforms"], f"{prefix}transforms", source)
    return out
