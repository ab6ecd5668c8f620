"""detrdistill.model_zoo: packaged configs, checkpoint table, detrdistill:// handler and the
DETRDistill/ names in detectron2's model zoo."""

from __future__ import annotations

import os

import pytest
import torch
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.config import instantiate
from detectron2.utils.file_io import PathManager

import detrdistill
from detrdistill import model_zoo
from detrdistill.checkpoint import CHECKPOINTS_ENV, checkpoint_cache_dir

EXPERIMENT_KEYS = ("model", "dataloader", "optimizer", "lr_multiplier", "train")


def test_list_configs_separates_common():
    experiments = model_zoo.list_configs()
    everything = model_zoo.list_configs(include_common=True)
    assert not any(name.startswith("common/") for name in experiments)
    assert {"common/train.py", "common/optim.py", "common/schedule.py"} <= set(everything)
    assert set(experiments) <= set(everything)
    assert everything == sorted(everything)


@pytest.mark.parametrize("name", model_zoo.list_configs(include_common=True))
def test_every_packaged_config_resolves_and_loads(name):
    path = model_zoo.get_config_file(name)
    assert os.path.isfile(path)
    assert model_zoo.get_config_file("DETRDistill/" + name.removesuffix(".py")) == path
    model_zoo.get_config(name)  # LazyConfig.load runs the file and its relative imports


@pytest.mark.parametrize("name", model_zoo.list_configs())
def test_experiment_configs_are_complete(name):
    cfg = model_zoo.get_config(name)
    missing = [key for key in EXPERIMENT_KEYS if key not in cfg]
    assert not missing, f"{name} lacks {missing}"
    import detectron2.model_zoo as d2_zoo

    assert d2_zoo.get_config("DETRDistill/" + name).keys() == cfg.keys()


@pytest.mark.slow
@pytest.mark.parametrize("name", model_zoo.list_configs())
def test_experiment_models_instantiate(name):
    cfg = model_zoo.get_config(name)
    if "teacher" in cfg.model:  # distillation: the teacher file is not here; say so explicitly
        cfg.model.update(teacher_weights="", allow_random_teacher=True)
    with torch.device("meta"):  # full-size COCO models: structure only, no memory
        model = instantiate(cfg.model)
    assert isinstance(model, torch.nn.Module)


def test_distillation_config_without_its_teacher_file_fails_clearly():
    cfg = model_zoo.get_config("detrdistill/coco_deformable_detr_r101_to_r50_50ep.py")
    with pytest.raises(FileNotFoundError, match="model.teacher_weights"):
        with torch.device("meta"):
            instantiate(cfg.model)


def test_unknown_name_lists_close_matches():
    with pytest.raises(RuntimeError, match=r"common/schedule\.py"):
        model_zoo.get_config_file("common/schedul.py")
    with pytest.raises(RuntimeError, match="No trained checkpoint"):
        model_zoo.get_checkpoint_url("common/train.py")


def test_detectron2_model_zoo_registration_is_idempotent_and_delegates():
    import detectron2.model_zoo as d2_zoo
    from detectron2.model_zoo import model_zoo as d2_zoo_module

    before = (d2_zoo_module.get_config_file, d2_zoo_module.get_checkpoint_url)
    assert model_zoo.register_detectron2_model_zoo()
    assert model_zoo.register_detectron2_model_zoo()
    after = (d2_zoo_module.get_config_file, d2_zoo_module.get_checkpoint_url)
    assert before == after
    assert (d2_zoo.get_config_file, d2_zoo.get_checkpoint_url) == after
    for wrapped in after:  # wrapped exactly once
        assert not hasattr(wrapped.__detrdistill_original__, "__detrdistill_original__")

    ours = d2_zoo.get_config_file("DETRDistill/common/train.py")
    assert ours == model_zoo.get_config_file("common/train.py")
    assert d2_zoo.get_config("DETRDistill/common/train.py").train.clip_grad.max_norm == 0.1
    # names without the prefix still go to detectron2
    assert d2_zoo.get_config_file("COCO-Detection/retinanet_R_50_FPN_1x.yaml").endswith(".yaml")
    url = d2_zoo.get_checkpoint_url("COCO-Detection/retinanet_R_50_FPN_1x.yaml")
    assert url.startswith("https://dl.fbaipublicfiles.com/detectron2/")
    with pytest.raises(RuntimeError, match="DETRDistill model zoo"):
        d2_zoo.get_config_file("DETRDistill/nope.py")


def test_trained_config_uses_checkpoint_table(monkeypatch):
    monkeypatch.setitem(model_zoo.CHECKPOINTS, "common/train", "detrdistill://train.pth")
    assert model_zoo.get_checkpoint_url("common/train.py") == "detrdistill://train.pth"
    cfg = model_zoo.get_config("common/train.py", trained=True)
    assert cfg.train.init_checkpoint == "detrdistill://train.pth"
    import detectron2.model_zoo as d2_zoo

    assert d2_zoo.get_checkpoint_url("DETRDistill/common/train.py") == "detrdistill://train.pth"
    assert d2_zoo.get_config("DETRDistill/common/train.py", trained=True).train.init_checkpoint == (
        "detrdistill://train.pth"
    )


def test_detrdistill_path_handler(monkeypatch, tmp_path):
    assert "model_zoo" in vars(detrdistill)  # `import detrdistill` registered everything
    monkeypatch.setenv(CHECKPOINTS_ENV, str(tmp_path))
    assert checkpoint_cache_dir() == str(tmp_path)
    with pytest.raises(FileNotFoundError) as error:
        PathManager.get_local_path("detrdistill://sub/missing.pth")
    message = str(error.value)
    assert str(tmp_path / "sub" / "missing.pth") in message and CHECKPOINTS_ENV in message

    with PathManager.open("detrdistill://sub/note.txt", "w") as f:
        f.write("hello")
    assert PathManager.exists("detrdistill://sub/note.txt")
    assert PathManager.isfile("detrdistill://sub/note.txt")
    assert PathManager.get_local_path("detrdistill://sub/note.txt") == str(
        tmp_path / "sub" / "note.txt"
    )
    with PathManager.open("detrdistill://sub/note.txt") as f:
        assert f.read() == "hello"

    monkeypatch.delenv(CHECKPOINTS_ENV)
    assert checkpoint_cache_dir() == os.path.expanduser("~/.cache/detrdistill/checkpoints")


def test_get_instantiates_and_loads_detrdistill_checkpoint(monkeypatch, tmp_path):
    configs, checkpoints = tmp_path / "configs", tmp_path / "checkpoints"
    (configs / "toy").mkdir(parents=True)
    checkpoints.mkdir()
    (configs / "toy" / "linear.py").write_text(
        "import torch\n"
        "from detectron2.config import LazyCall as L\n"
        "model = L(torch.nn.Linear)(in_features=2, out_features=3)\n"
        'train = dict(init_checkpoint="", device="cpu")\n'
    )
    torch.manual_seed(0)
    reference = torch.nn.Linear(2, 3)
    DetectionCheckpointer(reference, str(checkpoints)).save("toy_linear")
    monkeypatch.setattr(model_zoo, "configs_root", lambda: configs)
    monkeypatch.setitem(model_zoo.CHECKPOINTS, "toy/linear", "detrdistill://toy_linear.pth")
    monkeypatch.setenv(CHECKPOINTS_ENV, str(checkpoints))

    assert model_zoo.list_configs() == ["toy/linear.py"]
    model = model_zoo.get("toy/linear", trained=True)
    torch.testing.assert_close(model.weight, reference.weight)
    assert model.training
    untrained = model_zoo.get("toy/linear.py")
    assert not torch.equal(untrained.weight, reference.weight)
