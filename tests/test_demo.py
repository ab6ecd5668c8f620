"""`python -m detrdistill.demo` trains, evaluates and prints the AP table."""

import pytest

from detrdistill import demo


def test_format_results_is_a_markdown_row():
    text = demo.format_results("cfg.py", {"AP": 41.25, "AP50": 60.0, "AP75": 50.0}, 90.0)
    header, rule, row = text.splitlines()
    assert header.startswith("| model | AP | AP50 | AP75 | APs | APm |")
    assert row == "| cfg.py | 41.2 | 60.0 | 50.0 | nan | nan | 1.5 min |"


@pytest.mark.slow
def test_demo_runs_end_to_end_on_a_tiny_split(tmp_path, capsys):
    root = str(tmp_path / "data")
    results = demo.main(
        [
            "--max-iter",
            "3",
            "--output-dir",
            str(tmp_path / "out"),
            "dataloader.train.dataset.name=demo_train",
            "dataloader.train.dataset.num_images=4",
            f"dataloader.train.dataset.root={root}",
            "dataloader.test.dataset.name=demo_val",
            "dataloader.test.dataset.num_images=2",
            f"dataloader.test.dataset.root={root}",
            "dataloader.train.num_workers=0",
            "dataloader.test.num_workers=0",
        ]
    )
    assert {"AP", "AP50", "AP75"} <= set(results)
    assert "| shapes/deformable_detr_tiny.py |" in capsys.readouterr().out
    assert (tmp_path / "out" / "model_final.pth").is_file()
