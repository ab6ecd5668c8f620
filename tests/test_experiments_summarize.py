"""experiments/summarize.py: mean and spread over seeds of finished runs, as a markdown table."""

import importlib.util
import json
import statistics
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "summarize.py"


@pytest.fixture(scope="module")
def summarize():
    spec = importlib.util.spec_from_file_location("_experiments_summarize", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(root: Path, config: str, seed: int, aps: list[float], finished: bool = True) -> None:
    folder = root / config / f"seed{seed}"
    folder.mkdir(parents=True)
    rows = [{"iteration": 10, "total_loss": 1.0}]
    rows += [
        {"iteration": 250 * (i + 1) - 1, "bbox/AP": ap, "bbox/AP50": ap + 10, "bbox/AP75": ap - 1}
        for i, ap in enumerate(aps)
    ]
    (folder / "metrics.json").write_text("\n".join(json.dumps(r) for r in rows))
    if finished:
        (folder / "model_final.pth").write_bytes(b"x")


def test_table_means_spreads_and_deltas(tmp_path, summarize):
    base, logits = "shapes/deformable_detr_tiny", "detrdistill/shapes_deformable_tiny_logits"
    _run(tmp_path, base, 0, [1.0, 10.0])
    _run(tmp_path, base, 1, [2.0, 14.0])
    _run(tmp_path, base, 2, [3.0, 99.0], finished=False)  # unfinished: ignored
    _run(tmp_path, logits, 0, [4.0, 20.0])
    _run(tmp_path, logits, 1, [5.0, 21.0])
    _run(tmp_path, logits, 2, [6.0, 25.0])
    summary = summarize.summarize(str(tmp_path))
    assert [e["config"] for e in summary] == [base + ".py", logits + ".py"]
    assert summary[0]["seeds"] == [0, 1]
    assert summary[0]["AP"]["mean"] == pytest.approx(12.0)
    assert summary[0]["AP"]["std"] == pytest.approx(statistics.stdev([10.0, 14.0]))
    assert summary[1]["AP75"]["values"] == [19.0, 20.0, 24.0]
    assert summary[1]["AP_first_eval"]["mean"] == pytest.approx(5.0)
    assert summary[1]["first_eval_iteration"] == 250
    lines = summarize.format_table(summary).splitlines()
    assert lines[2].startswith("| baseline student | 2 | 12.0 ± 2.8 | — |")
    assert lines[3].startswith("| DETRDistill (a) logits | 3 | 22.0 ± 2.6 | +10.0 |")
    assert "20.0 / 21.0 / 25.0" in lines[3]


def test_missing_evaluation_is_an_error(tmp_path, summarize):
    folder = tmp_path / "shapes" / "deformable_detr_tiny" / "seed0"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"iteration": 1, "total_loss": 2.0}))
    (folder / "model_final.pth").write_bytes(b"x")
    with pytest.raises(ValueError, match="no bbox evaluation"):
        summarize.summarize(str(tmp_path))


def test_nano_pair_has_its_own_baseline(tmp_path, summarize):
    base, method = "shapes/deformable_detr_nano", "d3etr/shapes_deformable_nano"
    _run(tmp_path, base, 0, [1.0, 4.0])
    _run(tmp_path, method, 0, [2.0, 13.0])
    _run(tmp_path, "shapes/deformable_detr_tiny", 0, [5.0, 16.0])  # another pair: left out
    rows = summarize.PAIRS["nano"]
    summary = summarize.summarize(str(tmp_path), rows)
    assert [e["config"] for e in summary] == [base + ".py", method + ".py"]
    lines = summarize.format_table(summary, rows).splitlines()
    assert lines[3].startswith("| D3ETR adaptive+fixed | 1 | 13.0 | +9.0 |")


def test_one_seed_shows_no_spread(summarize):
    assert summarize._mean_std({"mean": 7.94, "std": 0.0, "values": [7.94]}) == "7.9"
    assert summarize._mean_std({"mean": 5.5, "std": 0.34, "values": [5.1, 5.8]}) == "5.5 ± 0.3"
