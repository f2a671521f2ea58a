"""The config system: defaults <- YAML (with base: chains) <- key=value, and its errors."""

from dataclasses import dataclass, field

import pytest
from omegaconf import OmegaConf

from react.config import ConfigError, RunConfig, load_config, parse_overrides, save_config, set_key
from react.tasks import load_task_config


@dataclass
class Model:
    layers: int = 2
    act: str = "elu"
    dims: list[int] = field(default_factory=lambda: [768, 128])


@dataclass
class Schema(RunConfig):
    task: str = "demo"
    model: Model = field(default_factory=Model)


def test_precedence_defaults_yaml_cli(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("model:\n  layers: 4\n  act: relu\ntrain:\n  lr: 0.001\n")
    user = tmp_path / "user.yaml"
    user.write_text("base: base.yaml\nmodel:\n  layers: 6\n")
    cfg = load_config(user, ["model.layers=3", "train.milestones=[5, 9]"], schema=Schema)
    assert cfg.model.layers == 3  # CLI beats YAML
    assert cfg.model.act == "relu"  # base YAML beats default
    assert cfg.train.lr == 0.001 and cfg.train.milestones == [5, 9]
    assert cfg.model.dims == [768, 128] and cfg.train.batch_size == 32  # untouched defaults
    assert isinstance(cfg.train.lr, float)


def test_scientific_notation_and_type_coercion():
    cfg = load_config(None, ["train.lr=1e-4", "train.epochs=7"], schema=Schema)
    assert cfg.train.lr == pytest.approx(1e-4) and cfg.train.epochs == 7


def test_unknown_key_names_it_and_lists_valid_keys(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(None, ["model.layer=3"], schema=Schema)
    assert "unknown config key 'model.layer'" in str(err.value)
    assert "act, dims, layers" in str(err.value)
    bad = tmp_path / "bad.yaml"
    bad.write_text("trian:\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'trian'.*train"):
        load_config(bad, schema=Schema)


def test_a_stored_config_override_lists_valid_keys_too():
    cfg = load_config(None, schema=Schema)
    set_key(cfg, "model.layers", 5)
    set_key(cfg, "train.lr_scales.encoder", 0.1)  # a free-form mapping takes new keys
    assert cfg.model.layers == 5 and cfg.train.lr_scales == {"encoder": 0.1}
    with pytest.raises(ConfigError, match=r"^override: unknown config key 'model.layer'. Valid keys here: "
                                          r"act, dims, layers$"):
        set_key(cfg, "model.layer", 3)
    with pytest.raises(ConfigError, match=r"unknown config key 'modle'. Valid keys here: checkpoint, "):
        set_key(cfg, "modle.layers", 3)
    with pytest.raises(ConfigError, match=r"^override: bad value for 'model.layers': .*'many'"):
        set_key(cfg, "model.layers", "many")


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match="bad value for 'model.layers'.*'many'"):
        load_config(None, ["model.layers=many"], schema=Schema)
    with pytest.raises(ConfigError, match="bad value for 'train.lr'"):
        load_config(None, ["train.lr=[1, 2]"], schema=Schema)


def test_malformed_inputs(tmp_path):
    with pytest.raises(ConfigError, match="not of the form key=value"):
        parse_overrides(["layers"])
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml", schema=Schema)
    loop = tmp_path / "loop.yaml"
    loop.write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="circular"):
        load_config(loop, schema=Schema)
    with pytest.raises(ConfigError, match="unknown task 'nope'"):
        load_task_config(None, ["task=nope"])


def test_resolved_config_round_trips(tmp_path):
    cfg = load_config(None, ["model.layers=5", "out_dir=runs/x"], schema=Schema)
    path = save_config(cfg, tmp_path)
    again = load_config(path, schema=Schema)
    assert OmegaConf.to_container(again) == OmegaConf.to_container(cfg)
