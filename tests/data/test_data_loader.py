"""The seeded training loader: batches are a function of the seed and the iteration only (not of
the worker count, the global RNG or a restart), and ranks take disjoint shares of one stream."""

from __future__ import annotations

import itertools
import random

import numpy as np
import pytest
import torch
from detectron2.utils import comm

from detrdistill.data import SeededTrainLoader, build_detr_train_loader

# 10 "images": 6 landscape, 4 portrait
DICTS = [{"index": i, "width": 60 if i % 5 < 3 else 40, "height": 50} for i in range(10)]


def mapper(d):
    """Uses every RNG an augmentation might use."""
    return (d["index"], int(np.random.randint(10**6)), random.random(), torch.rand(()).item())


def take(loader, n):
    return list(itertools.islice(iter(loader), n))


def build(**kwargs):
    options = dict(mapper=mapper, total_batch_size=2, seed=3, aspect_ratio_grouping=False)
    options.update(kwargs)
    return build_detr_train_loader(list(DICTS), **options)


def test_batches_do_not_depend_on_workers_or_the_global_rng():
    torch.manual_seed(0)
    np.random.seed(0)
    reference = take(build(num_workers=0), 8)
    torch.manual_seed(123)  # e.g. a teacher was built before the loader
    np.random.seed(123)
    random.seed(123)
    assert take(build(num_workers=2), 8) == reference
    assert take(build(num_workers=1, seed=4), 8) != reference  # the seed does matter
    # 8 batches of 2 cover the 10 images once, then a new shuffle
    first_epoch = [item[0] for batch in reference[:5] for item in batch]
    assert sorted(first_epoch) == list(range(10))


def test_loading_leaves_the_callers_rng_alone():
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    expected = (torch.rand(()).item(), np.random.rand(), random.random())
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    take(build(num_workers=0), 3)
    assert (torch.rand(()).item(), np.random.rand(), random.random()) == expected


@pytest.mark.parametrize("workers", [0, 2])
def test_start_iter_continues_the_stream(workers):
    reference = take(build(num_workers=workers), 9)
    resumed = build(num_workers=workers, start_iter=4)
    assert isinstance(resumed, SeededTrainLoader)
    assert take(resumed, 5) == reference[4:]
    resumed.set_start_iter(7)
    assert take(resumed, 2) == reference[7:]
    assert resumed.batch_indices(2, start_iter=7) == [[b[0] for b in x] for x in reference[7:]]


def test_aspect_ratio_grouping_batches_like_images_and_resumes():
    loader = build(num_workers=0, aspect_ratio_grouping=True, total_batch_size=3)
    batches = take(loader, 10)
    for batch in batches:
        assert len({DICTS[item[0]]["width"] > DICTS[item[0]]["height"] for item in batch}) == 1
    resumed = build(aspect_ratio_grouping=True, total_batch_size=3, start_iter=6)
    assert take(resumed, 4) == batches[6:]


def test_ranks_take_disjoint_shares_of_one_stream(monkeypatch):
    single = build(total_batch_size=2).batch_indices(6)
    flat = [i for batch in single for i in batch]
    shares = []
    for rank in range(2):
        monkeypatch.setattr(comm, "get_world_size", lambda: 2)
        monkeypatch.setattr(comm, "get_rank", lambda rank=rank: rank)
        loader = build(total_batch_size=4)  # 2 per process
        shares.append([i for batch in loader.batch_indices(3) for i in batch])
        assert [b[0] for b in take(loader, 1)[0]] == shares[-1][:2]
    assert shares[0] == flat[0::2] and shares[1] == flat[1::2]
    monkeypatch.setattr(comm, "get_world_size", lambda: 3)
    with pytest.raises(ValueError, match="divisible"):
        build(total_batch_size=4)


def test_trainer_checkpoint_keeps_the_data_seed():
    from detrdistill.engine import DETRTrainer
    from tests.helpers import TinyDetector

    model = TinyDetector()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loader = build(seed=11)
    state = DETRTrainer(model, loader, optimizer).state_dict()
    assert state["data_loader"] == {"seed": 11, "world_size": 1, "batch_size": 2}
    other = build(seed=99)
    DETRTrainer(model, other, optimizer).load_state_dict(state)
    assert other.seed == 11
