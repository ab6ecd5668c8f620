"""experiments/schedule_curve.py (AP against iteration, averaged over seeds) and the pairs of
experiments/summarize.py and experiments/shapes_table.sh naming configs that exist."""

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

from detrdistill import model_zoo

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def _load(name: str):
    sys.path.insert(0, str(EXPERIMENTS))  # schedule_curve imports its neighbours
    try:
        spec = importlib.util.spec_from_file_location(
            f"_experiments_{name}", EXPERIMENTS / f"{name}.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXPERIMENTS))
    return module


@pytest.fixture(scope="module")
def curve():
    return _load("schedule_curve")


@pytest.fixture(scope="module")
def summarize():
    return _load("summarize")


def _run(root: Path, config: str, seed: int, evals: dict[int, float], max_iter: int) -> None:
    """A finished run whose metrics.json holds ``{logged iteration: AP}`` evaluations."""
    folder = root / config / f"seed{seed}"
    folder.mkdir(parents=True)
    rows = [{"iteration": 3, "total_loss": 1.0}]
    rows += [
        {"iteration": it, "bbox/AP": ap, "bbox/AP50": 2 * ap, "bbox/AP75": ap}
        for it, ap in evals.items()
    ]
    (folder / "metrics.json").write_text("\n".join(json.dumps(r) for r in rows))
    (folder / "config.yaml").write_text(f"train:\n  max_iter: {max_iter}\n")
    (folder / "model_final.pth").write_bytes(b"x")


def test_curves_average_each_iteration_over_the_seeds(tmp_path, curve):
    base, dd = curve.CURVES["conditional"][0][1], curve.CURVES["conditional"][1][1]
    # detectron2 logs a periodic evaluation at the last finished 0-based iteration (249) and the
    # final one at max_iter (500 here): both are "iterations finished"
    _run(tmp_path, base, 0, {249: 1.0, 500: 5.0}, 500)
    _run(tmp_path, base, 1, {249: 3.0, 500: 9.0}, 500)
    _run(tmp_path, dd, 2, {249: 4.0, 500: 20.0}, 500)
    curves = curve.read_curves(str(tmp_path), curve.CURVES["conditional"])
    assert list(curves) == ["baseline", "DETRDistill"]  # no D3ETR run: left out
    assert curves["baseline"]["iterations"] == [250, 500]
    assert curves["baseline"]["AP"] == pytest.approx([2.0, 7.0])
    assert curves["baseline"]["AP_per_seed"] == {0: [1.0, 5.0], 1: [3.0, 9.0]}
    assert curves["DETRDistill"]["seeds"] == [2]
    table = curve.format_table(curves).splitlines()
    assert table[0] == "| iteration | baseline | DETRDistill |"
    assert table[2:] == ["| 250 | 2.0 | 4.0 |", "| 500 | 7.0 | 20.0 |"]


def test_seeds_evaluated_at_different_iterations_are_an_error(tmp_path, curve):
    base = curve.CURVES["nano"][0][1]
    _run(tmp_path, base, 0, {249: 1.0, 500: 5.0}, 500)
    _run(tmp_path, base, 1, {99: 1.0, 500: 5.0}, 500)
    with pytest.raises(ValueError, match="different iterations"):
        curve.read_curves(str(tmp_path), curve.CURVES["nano"])


def test_the_curves_teachers_are_shipped_detectors(curve):
    from detrdistill.checkpoint.shipped import SHIPPED

    assert set(curve.TEACHERS) == set(curve.CURVES)
    for name in curve.TEACHERS.values():
        assert not SHIPPED[name].is_backbone


@pytest.mark.parametrize("pair", ["tiny", "nano", "conditional"])
def test_every_table_row_is_a_packaged_config_the_table_script_runs(pair, summarize):
    script = (EXPERIMENTS / "shapes_table.sh").read_text()
    arrays = dict(re.findall(r"^(\w+_CONFIGS)=\(\n(.*?)\n\)", script, flags=re.M | re.S))
    array = {
        "tiny": "DEFAULT_CONFIGS",
        "nano": "NANO_CONFIGS",
        "conditional": "CONDITIONAL_CONFIGS",
    }[pair]
    run = [line.strip() for line in arrays[array].splitlines()]
    rows = [config + ".py" for _, config in summarize.PAIRS[pair]]
    assert rows == [c for c in run if c in rows]
    assert set(rows) <= set(run)
    for config in rows:
        model_zoo.get_config_file(config)  # raises for a config that is not packaged
