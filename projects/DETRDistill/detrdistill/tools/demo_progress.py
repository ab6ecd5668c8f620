"""What ``python -m detrdistill.demo`` shows while it runs, and where the rest goes.

The terminal gets one progress bar per stage (count, ETA, latest loss) and one line per
evaluation (:func:`eval_line`); everything else (detectron2's logs, its environment dump and
config echo, pycocotools' tables, warnings) goes to files:

* a training stage is ``python train_net.py ...`` in a subprocess whose console output is
  written to ``<stage>/console.txt``; detectron2 itself writes ``<stage>/log.txt``,
  ``<stage>/config.yaml`` and ``<stage>/metrics.json``, which :class:`MetricsFollower` reads
  while the run goes on (:func:`run_training`);
* in-process work (the teacher's evaluation, the measurements) runs inside
  :func:`log_to_file`, which sends the logging records and stdout/stderr to a file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import time
from collections.abc import Iterable, Iterator
from typing import IO

from tqdm import tqdm

__all__ = [
    "BAR_FORMAT",
    "CountingLoader",
    "MetricsFollower",
    "TrainingFailed",
    "eval_line",
    "eval_row",
    "log_to_file",
    "run_training",
    "stage_bar",
]

BAR_FORMAT = (
    "{desc:<12} {percentage:3.0f}%|{bar:24}| {n_fmt}/{total_fmt} {unit} "
    "[{elapsed}<{remaining}{postfix}]"
)
_LOG_FORMAT = "[%(asctime)s %(name)s %(levelname)s] %(message)s"


def eval_row(row: dict, max_iter: int) -> dict | None:
    """The COCO box metrics of one ``metrics.json`` row, or None when it has none.

    detectron2 logs a periodic evaluation at the 0-based index of the last finished iteration
    and the final one at ``max_iter - 1``; both become the number of finished iterations.

    Returns:
        ``{"iteration", "AP", "AP50", "AP75"}`` or None.
    """
    if "bbox/AP" not in row:
        return None
    return {
        "iteration": min(int(row["iteration"]) + 1, max_iter),
        **{key: float(row[f"bbox/{key}"]) for key in ("AP", "AP50", "AP75")},
    }


def eval_line(name: str, metrics: dict, max_iter: int | None = None) -> str:
    """The line printed for one evaluation, e.g.
    ``  eval baseline     iter   84/500   AP  12.3  AP50  30.1`` (no ``iter`` part without
    ``max_iter``: an evaluation-only stage)."""
    where = f"iter {metrics['iteration']:>4}/{max_iter:<4}" if max_iter else " " * 14
    return f"  eval {name:<12} {where}  AP {metrics['AP']:5.1f}  AP50 {metrics['AP50']:5.1f}"


class MetricsFollower:
    """The rows a running training appends to its ``metrics.json``, as they arrive.

    Only complete lines are returned; a half-written last line waits for the next call.
    """

    def __init__(self, path: str):
        self.path = path
        self._offset = 0

    def new_rows(self) -> list[dict]:
        """Rows written since the last call (none while the file does not exist)."""
        if not os.path.isfile(self.path):
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read()
        complete = data[: data.rfind(b"\n") + 1]
        self._offset += len(complete)
        return [json.loads(line) for line in complete.decode().splitlines() if line.strip()]


def stage_bar(name: str, total: int, stream: IO[str], unit: str = "it") -> tqdm:
    """A progress bar for one stage: ``name``, percentage, count, elapsed < ETA, postfix.

    The ETA is the mean rate since the bar started (``smoothing=0``): it includes the
    evaluations, which stop the count for a while at regular intervals.
    """
    return tqdm(
        total=total,
        desc=name,
        unit=unit,
        file=stream,
        bar_format=BAR_FORMAT,
        smoothing=0,
        mininterval=0.5,
        dynamic_ncols=False,
        ncols=100,
    )


class CountingLoader:
    """A data loader that advances a progress bar by the batch size after each batch."""

    def __init__(self, loader: Iterable, bar: tqdm):
        self.loader = loader
        self.bar = bar

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator:
        for batch in self.loader:
            yield batch
            self.bar.update(len(batch))


@contextlib.contextmanager
def log_to_file(path: str, level: int = logging.INFO):
    """Send logging records (``level`` and up, every logger) and ``sys.stdout``/``sys.stderr``
    to ``path`` (appended) for the duration of the block.

    Yields:
        the open file.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    root = logging.getLogger()
    saved_level = root.level
    with open(path, "a") as handle:
        handler = logging.StreamHandler(handle)
        handler.setFormatter(logging.Formatter(_LOG_FORMAT, datefmt="%m/%d %H:%M:%S"))
        handler.setLevel(level)
        root.addHandler(handler)
        root.setLevel(min(saved_level, level) if saved_level else level)
        rerouted = _route_to_root()
        try:
            with contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
                yield handle
        finally:
            _restore(rerouted)
            root.removeHandler(handler)
            root.setLevel(saved_level)


def _route_to_root() -> list[tuple[logging.Logger, bool, list[logging.Handler]]]:
    """Make every named logger hand its records to the root logger only, for now.

    detectron2's ``setup_logger`` gives the ``detectron2`` logger its own handler on the
    process's original stdout and stops propagation, so once anything in the process called it,
    those records would bypass :func:`log_to_file` and reach the screen.

    Returns:
        what :func:`_restore` puts back: (logger, propagate, handlers) of each changed logger.
    """
    changed = []
    for logger in list(logging.root.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger) and (logger.handlers or not logger.propagate):
            changed.append((logger, logger.propagate, list(logger.handlers)))
            for own in list(logger.handlers):
                logger.removeHandler(own)
            logger.propagate = True
    return changed


def _restore(changed: list[tuple[logging.Logger, bool, list[logging.Handler]]]) -> None:
    for logger, propagate, handlers in changed:
        logger.propagate = propagate
        for own in handlers:
            logger.addHandler(own)


class TrainingFailed(RuntimeError):
    """A training subprocess ended with a non-zero exit code; the message names its files and
    quotes the end of its console output."""


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""


def run_training(
    name: str,
    command: list[str],
    output_dir: str,
    max_iter: int,
    stream: IO[str],
    poll_seconds: float = 0.5,
    env: dict | None = None,
) -> list[dict]:
    """Run one training subprocess with a progress bar and one line per evaluation.

    The subprocess's stdout and stderr go to ``output_dir/console.txt``; the bar follows its
    ``output_dir/metrics.json`` (iteration, ``total_loss``) and each evaluation there prints
    :func:`eval_line`.

    Args:
        name: the stage's name (bar and lines).
        command: the command line; it must write ``metrics.json`` to ``output_dir``.
        output_dir: the run's ``train.output_dir`` (created).
        max_iter: the run's ``train.max_iter`` (bar total).
        stream: where the bar and the lines go (the terminal).
        poll_seconds: how often ``metrics.json`` is read.
        env: the subprocess's environment (default: this process's).

    Returns:
        the evaluations (:func:`eval_row`), in order.

    Raises:
        TrainingFailed: the subprocess failed.
    """
    os.makedirs(output_dir, exist_ok=True)
    console = os.path.join(output_dir, "console.txt")
    follower = MetricsFollower(os.path.join(output_dir, "metrics.json"))
    history: list[dict] = []
    with open(console, "w") as log, stage_bar(name, max_iter, stream) as bar:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            while True:
                finished = process.poll() is not None
                for row in follower.new_rows():
                    if "total_loss" in row:
                        bar.update(max(0, min(int(row["iteration"]) + 1, max_iter) - bar.n))
                        bar.set_postfix_str(f"loss {float(row['total_loss']):.3f}")
                    metrics = eval_row(row, max_iter)
                    if metrics is not None:
                        history.append(metrics)
                        bar.write(eval_line(name, metrics, max_iter), file=stream)
                if finished:
                    break
                time.sleep(poll_seconds)
        finally:
            if process.poll() is None:  # interrupted (Ctrl-C): stop the training too
                process.terminate()
                process.wait()
    if process.returncode != 0:
        raise TrainingFailed(
            f"training {name} failed (exit {process.returncode}); its logs are {console} and "
            f"{os.path.join(output_dir, 'log.txt')}. The end of {console}:\n{_tail(console)}"
        )
    return history
