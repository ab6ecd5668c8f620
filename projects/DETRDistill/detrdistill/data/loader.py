"""A seeded, resumable training loader: the same batches for a seed, whatever else ran before.

detectron2's ``build_detection_train_loader`` takes its sampler seed and its workers' seeds from
the global RNG state at the time the loader is built and iterated, and its workers' augmentation
RNGs run on from there. Everything that consumes global RNG before (e.g. building a teacher)
then changes the data, and a resumed run starts the index stream and the augmentation RNGs
afresh. :func:`build_detr_train_loader` (same arguments, plus ``seed`` and ``start_iter``)
instead makes batch ``k`` of a rank a pure function of ``(seed, k, rank, world size, batch
size)``:

* the index stream is ``shuffle(range(N)) + shuffle(range(N)) + ...`` from a
  ``torch.Generator`` seeded with ``seed`` (as detectron2's ``TrainingSampler``); rank ``r`` of
  ``W`` takes positions ``r, r + W, r + 2W, ...``;
* with ``aspect_ratio_grouping`` the rank's indices are grouped into batches of images with
  width > height or not (as detectron2's ``AspectRatioGroupedDataset``), from the dataset
  dicts' ``width``/``height``, before any image is read;
* the mapper (augmentation) of the element at stream position ``p`` runs with ``numpy``,
  ``random`` and torch's CPU generator seeded from ``(seed, p)``; the caller's RNG states are
  restored afterwards, so loading does not consume or disturb the training process's RNG;
* worker ``w`` of ``n`` maps batches ``start_iter + w, start_iter + w + n, ...`` and the
  DataLoader yields them round-robin, i.e. in order, for any ``num_workers``.

Resuming at iteration ``k`` (:meth:`SeededTrainLoader.set_start_iter`, called by
:class:`~detrdistill.engine.train_loop.DETRTrainer`) therefore continues with exactly the
batches the uninterrupted run would have used.
"""

from __future__ import annotations

import contextlib
import logging
import random
from collections.abc import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
import torch.utils.data as torchdata
from detectron2.data.build import trivial_batch_collator, worker_init_reset_seed
from detectron2.data.common import DatasetFromList
from detectron2.utils import comm
from detectron2.utils.serialize import PicklableWrapper

__all__ = ["SeededTrainLoader", "build_detr_train_loader", "sample_seed"]

logger = logging.getLogger(__name__)

_MAX_MAP_ATTEMPTS = 10


def sample_seed(seed: int, position: int) -> int:
    """The RNG seed of the mapper for the element at global stream ``position`` (32 bits)."""
    return int(np.random.SeedSequence([int(seed), int(position)]).generate_state(1)[0])


@contextlib.contextmanager
def _isolated_rng(seed: int):
    """Seed numpy, ``random`` and torch's CPU generator; restore the previous states after."""
    np_state, py_state = np.random.get_state(), random.getstate()
    torch_state = torch.random.get_rng_state()
    np.random.seed(seed)
    random.seed(seed)
    torch.random.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
        torch.random.set_rng_state(torch_state)


def _identity(x):
    return x


class _SeededBatches(torchdata.IterableDataset):
    """Yields this rank's mapped batches ``start_iter, start_iter + 1, ...`` (sharded by worker)."""

    def __init__(
        self,
        dataset,
        mapper: Callable | None,
        batch_size: int,
        *,
        seed: int,
        rank: int,
        world_size: int,
        shuffle: bool,
        sampler: Iterable[int] | None,
        collate_fn: Callable,
        groups: np.ndarray | None,
    ):
        self.dataset = dataset
        self.mapper = PicklableWrapper(mapper) if mapper is not None else None
        self.batch_size = batch_size
        self.seed = int(seed)
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.sampler = sampler
        self.collate_fn = collate_fn
        self.start_iter = 0
        self.groups = groups

    def _global_stream(self) -> Iterator[int]:
        generator = torch.Generator()
        generator.manual_seed(self.seed)
        size = len(self.dataset)
        while True:
            if self.shuffle:
                yield from torch.randperm(size, generator=generator).tolist()
            else:
                yield from range(size)

    def _rank_stream(self) -> Iterator[tuple[int, int]]:
        """(dataset index, global stream position) of this rank's elements."""
        if self.sampler is not None:  # already sharded by rank, as detectron2's samplers are
            for j, index in enumerate(self.sampler):
                yield int(index), j * self.world_size + self.rank
            return
        for j, index in enumerate(self._global_stream()):
            if j % self.world_size == self.rank:
                yield index, j

    def batch_indices(self) -> Iterator[list[tuple[int, int]]]:
        """This rank's batches from iteration 0, as lists of (index, position); no mapping."""
        if self.groups is None:
            batch: list[tuple[int, int]] = []
            for item in self._rank_stream():
                batch.append(item)
                if len(batch) == self.batch_size:
                    yield batch
                    batch = []
        else:
            buckets: list[list[tuple[int, int]]] = [[], []]
            for item in self._rank_stream():
                bucket = buckets[self.groups[item[0]]]
                bucket.append(item)
                if len(bucket) == self.batch_size:
                    yield bucket[:]
                    del bucket[:]

    def _map(self, index: int, position: int):
        seed = sample_seed(self.seed, position)
        for attempt in range(_MAX_MAP_ATTEMPTS):
            element = self.dataset[index]
            with _isolated_rng(seed):
                mapped = self.mapper(element) if self.mapper is not None else element
            if mapped is not None:
                return mapped
            # the mapper skipped this element: a replacement drawn from the element's own seed
            replacement = np.random.RandomState(seed).randint(len(self.dataset))
            logger.warning(
                "Mapper returned None for dataset index %d (attempt %d); using index %d instead.",
                index,
                attempt + 1,
                replacement,
            )
            index, seed = int(replacement), sample_seed(seed, attempt + 1)
        raise RuntimeError(
            f"The mapper returned None {_MAX_MAP_ATTEMPTS} times in a row "
            f"(last dataset index {index}); check the dataset and the mapper."
        )

    def __iter__(self):
        info = torchdata.get_worker_info()
        worker, num_workers = (0, 1) if info is None else (info.id, info.num_workers)
        for k, batch in enumerate(self.batch_indices()):
            if k < self.start_iter or (k - self.start_iter) % num_workers != worker:
                continue
            yield self.collate_fn([self._map(index, position) for index, position in batch])


def _aspect_ratio_groups(dataset) -> np.ndarray:
    """0/1 group (width > height) of every element, from the dicts; all 0 if sizes are absent."""
    groups = np.zeros(len(dataset), dtype=np.int8)
    for i in range(len(dataset)):
        d = dataset[i]
        if isinstance(d, dict) and "width" in d and "height" in d:
            groups[i] = 1 if d["width"] > d["height"] else 0
    return groups


class SeededTrainLoader(torchdata.DataLoader):
    """The DataLoader of :func:`build_detr_train_loader`: an infinite stream of batches.

    Extra API: :attr:`seed`, :meth:`set_start_iter` (before iterating), :meth:`state_dict` /
    :meth:`load_state_dict` (the seed and layout, for the trainer's checkpoint) and
    :meth:`batch_indices` (the dataset indices of the batches, without loading anything).
    """

    def __init__(self, batches: _SeededBatches, **kwargs):
        super().__init__(batches, batch_size=None, collate_fn=_identity, **kwargs)
        self._batches = batches

    @property
    def seed(self) -> int:
        return self._batches.seed

    @property
    def start_iter(self) -> int:
        return self._batches.start_iter

    def set_start_iter(self, start_iter: int) -> None:
        """Start the next ``iter()`` at this iteration (its batch is the one of a full run)."""
        if start_iter < 0:
            raise ValueError(f"start_iter must be >= 0, got {start_iter}")
        self._batches.start_iter = int(start_iter)

    def batch_indices(self, num_batches: int, start_iter: int = 0) -> list[list[int]]:
        """Dataset indices of this rank's batches ``start_iter .. start_iter + num_batches - 1``."""
        stream = self._batches.batch_indices()
        batches = []
        for k, batch in enumerate(stream):
            if k >= start_iter + num_batches:
                break
            if k >= start_iter:
                batches.append([index for index, _ in batch])
        return batches

    def state_dict(self) -> dict:
        b = self._batches
        return {"seed": b.seed, "world_size": b.world_size, "batch_size": b.batch_size}

    def load_state_dict(self, state: dict) -> None:
        """Take the checkpoint's data seed (so that a resumed run continues its own stream)."""
        b = self._batches
        if int(state["seed"]) != b.seed:
            logger.info(
                "Data loader seed %d restored from the checkpoint (configured: %d).",
                state["seed"],
                b.seed,
            )
            b.seed = int(state["seed"])
        if (state.get("world_size"), state.get("batch_size")) != (b.world_size, b.batch_size):
            logger.warning(
                "The checkpoint's data loader ran %s processes at batch size %s per process, "
                "this one %d at %d: the data order after resuming differs from an "
                "uninterrupted run.",
                state.get("world_size"),
                state.get("batch_size"),
                b.world_size,
                b.batch_size,
            )


def build_detr_train_loader(
    dataset: Sequence | torchdata.Dataset,
    *,
    mapper: Callable | None,
    total_batch_size: int,
    sampler: Iterable[int] | None = None,
    aspect_ratio_grouping: bool = True,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
    seed: int | None = None,
    start_iter: int = 0,
    shuffle: bool = True,
    **kwargs,
) -> SeededTrainLoader:
    """detectron2's ``build_detection_train_loader`` with a seeded, resumable data stream.

    Args:
        dataset: list of dataset dicts or a map-style dataset.
        mapper: called on each element (e.g. :class:`~detrdistill.data.DetrDatasetMapper`);
            ``None`` for none. Returning ``None`` skips the element (a replacement index is
            drawn from the element's seed).
        total_batch_size: batch size summed over all processes (divisible by their number).
        sampler: optional infinite index stream of this rank (e.g. a detectron2 sampler, which
            shards by rank itself); ``None`` means the seeded shuffled stream above. A sampler
            must be seeded for an exact resume.
        aspect_ratio_grouping: batch images with width > height separately from the others.
        num_workers: DataLoader worker processes (the batches do not depend on it).
        collate_fn: applied to each batch (a list of mapped elements); default: the list.
        seed: data seed; ``None`` draws one shared by all processes (log it to reproduce).
        start_iter: index of the first batch (see also :meth:`SeededTrainLoader.set_start_iter`).
        shuffle: shuffle each pass over the dataset.
        **kwargs: further ``torch.utils.data.DataLoader`` arguments (e.g. ``pin_memory``).

    Returns:
        SeededTrainLoader: yields lists of ``total_batch_size / world_size`` mapped elements.
    """
    if isinstance(dataset, torchdata.IterableDataset):
        raise TypeError(
            "build_detr_train_loader needs a list or map-style dataset, not an IterableDataset "
            "(use detectron2's build_detection_train_loader for those)"
        )
    for key in ("single_gpu_batch_size", "drop_last"):
        if kwargs.pop(key, None) not in (None, True):
            raise ValueError(f"build_detr_train_loader does not support {key}")
    if len(dataset) == 0:
        raise ValueError("The training dataset is empty.")
    groups = _aspect_ratio_groups(dataset) if aspect_ratio_grouping else None
    if isinstance(dataset, list):
        dataset = DatasetFromList(dataset, copy=False)
    world_size, rank = comm.get_world_size(), comm.get_rank()
    if total_batch_size <= 0 or total_batch_size % world_size != 0:
        raise ValueError(
            f"Total batch size ({total_batch_size}) must be positive and divisible by the "
            f"number of processes ({world_size})."
        )
    if seed is None:
        seed = comm.shared_random_seed()
        logger.info("Data loader seed (random, shared by all processes): %d", seed)
    batches = _SeededBatches(
        dataset,
        mapper,
        total_batch_size // world_size,
        seed=seed,
        rank=rank,
        world_size=world_size,
        shuffle=shuffle,
        sampler=sampler,
        collate_fn=collate_fn if collate_fn is not None else trivial_batch_collator,
        groups=groups,
    )
    generator = torch.Generator()  # worker base seeds: from the data seed, not the global RNG
    generator.manual_seed(sample_seed(seed, 2**48 + rank))
    loader = SeededTrainLoader(
        batches,
        num_workers=num_workers,
        worker_init_fn=worker_init_reset_seed,
        generator=generator,
        **kwargs,
    )
    loader.set_start_iter(start_iter)
    logger.info(
        "Seeded train loader: seed %d, %d images, batch size %d per process, %d workers.",
        seed,
        len(dataset),
        batches.batch_size,
        num_workers,
    )
    return loader
