"""benchmarks/generator_table.py: its --stage1 option (parsing and the one-line errors, exit 2);
the table itself is the command's output (README, docs/generators.md)."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    path = ROOT / "benchmarks" / "generator_table.py"
    spec = importlib.util.spec_from_file_location("generator_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    yield module
    sys.path.remove(str(ROOT / "benchmarks"))


def test_stage1_pairs(table):
    assert table.stage1_configs(["belfusion=configs/belfusion_vae.yaml", "b=x=y.yaml"]) == {
        "belfusion": "configs/belfusion_vae.yaml", "b": "x=y.yaml"}
    assert table.stage1_configs([]) == {}


@pytest.mark.parametrize("argv, message", [
    (["--stage1", "belfusion"], "--stage1 belfusion: expected STEM=CONFIG"),
    (["--stage1", "=configs/belfusion_vae.yaml"], "expected STEM=CONFIG"),
    (["--stage1", "regnn=configs/belfusion_vae.yaml"], "--stage1 regnn: no --configs entry named regnn"),
    (["--stage1", "belfusion=configs/nothing.yaml"], "configs/nothing.yaml: config not found"),
])
def test_bad_stage1_exits_2(table, capsys, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(ROOT)
    code = table.main(["--configs", "configs/belfusion.yaml", "--out-dir", str(tmp_path / "out"), *argv])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()
