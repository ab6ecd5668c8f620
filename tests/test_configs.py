"""Every packaged experiment config is complete, saves to YAML and reloads unchanged."""

import pytest
from detectron2.config import LazyConfig

import detrdistill  # noqa: F401
from detrdistill import model_zoo

EXPERIMENT_KEYS = {"model", "dataloader", "optimizer", "lr_multiplier", "train"}


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
