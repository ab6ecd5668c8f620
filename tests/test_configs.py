"""Every packaged experiment config is complete, saves to YAML and reloads unchanged."""

import runpy

import pytest
from detectron2.config import LazyConfig

import detrdistill  # noqa: F401
from detrdistill import model_zoo

EXPERIMENT_KEYS = {"model", "dataloader", "optimizer", "lr_multiplier", "train"}
# Each method's default loss components (common/distill_losses.py: distillation_method).
METHODS = {
    "detrdistill": ("logits", "feature", "query_prior"),
    "d3etr": ("adaptive", "fixed"),
    "kd_detr": ("kd_detr",),
}


@pytest.mark.parametrize("name", model_zoo.list_configs())
def test_config_has_only_the_standard_top_level_keys(name):
    cfg = model_zoo.get_config(name)
    assert set(cfg.keys()) == EXPERIMENT_KEYS, "import helpers under a _private alias"


@pytest.mark.parametrize("name", model_zoo.list_configs())
def test_config_saves_to_yaml_without_pickle_and_reloads(name, tmp_path):
    cfg = model_zoo.get_config(name)
    path = str(tmp_path / "config.yaml")
    LazyConfig.save(cfg, path)
    assert not (tmp_path / "config.yaml.pkl").exists(), "a lambda or local function in the config"
    again = str(tmp_path / "again.yaml")
    LazyConfig.save(LazyConfig.load(path), again)
    assert open(again).read() == open(path).read()


PAIR_NAMES = [n for n in model_zoo.list_configs() if n.split("/")[0] in METHODS]


def _named_in_header(name: str, label: str) -> str | None:
    """The config a pair's header comment names after ``label`` (e.g. "Teacher: ")."""
    for line in open(model_zoo.get_config_file(name)):
        if not line.startswith("#"):
            return None
        if label in line:
            return line.split(label, 1)[1].split()[0].rstrip(";,.")
    return None


@pytest.mark.parametrize("name", [n for n in PAIR_NAMES if _named_in_header(n, "Teacher: ")])
def test_a_coco_pair_is_its_student_and_teacher_configs(name):
    """A composed pair holds its baseline student's model, data and schedule and its teacher's
    model and converted weights, exactly as their own configs define them."""
    cfg = model_zoo.get_config(name)
    student = model_zoo.get_config(_named_in_header(name, "baseline student: "))
    teacher = model_zoo.get_config(_named_in_header(name, "Teacher: "))
    assert cfg.model.student == student.model
    assert cfg.model.teacher == teacher.model
    assert cfg.model.teacher_weights == teacher.train.init_checkpoint
    assert cfg.dataloader.train == student.dataloader.train
    assert cfg.dataloader.test == student.dataloader.test
    assert cfg.lr_multiplier == student.lr_multiplier
    assert cfg.train.max_iter == student.train.max_iter
    assert cfg.train.output_dir == f"./output/{name.removesuffix('.py')}"
    method = name.split("/")[0]
    assert set(cfg.model.losses) == set(cfg.model.loss_weights) == set(METHODS[method])


def test_every_pair_writes_to_its_own_output_dir():
    for name in PAIR_NAMES:
        assert model_zoo.get_config(name).train.output_dir == f"./output/{name[:-3]}", name


def test_distillation_method_names_the_choices_on_a_typo():
    path = model_zoo.get_config_file("common/distill_losses.py")  # no relative imports
    method = runpy.run_path(path)["distillation_method"]
    assert set(method("d3etr", ["fixed"])["losses"]) == {"fixed"}
    assert method("kd_detr_official")["group_builders"]["kd_general_points"]["distribution"] == (
        "sigmoid_normal"
    )
    with pytest.raises(ValueError, match="'d3etr_port'"):
        method("d3etr_official")
    with pytest.raises(KeyError, match="'query_prior'"):
        method("detrdistill", ["query_priors"])
