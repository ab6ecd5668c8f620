"""Helpers shared by the benchmark scripts: machine description, timing, peak memory, JSON.

Imported by the scripts in this folder (``python benchmarks/<name>.py`` puts the folder on
``sys.path``); not part of the ``detrdistill`` package.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from detrdistill.engine.machine import describe_machine, utc_now

__all__ = [
    "MemoryProbe",
    "describe_machine",
    "measure",
    "measure_interleaved",
    "resolve_device",
    "summarize_times",
    "synchronize",
    "utc_now",
    "write_result",
]

MiB = 1024 * 1024


def resolve_device(requested: str | None) -> torch.device:
    """``requested`` or, when None/"auto", cuda if available else cpu."""
    if requested in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {requested}: CUDA is not available on this machine")
    return device


def synchronize(device: torch.device) -> None:
    """Wait for queued CUDA work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_rss_peak() -> bool:
    """Reset the kernel's peak-RSS counter (VmHWM) of this process (Linux >= 4.0)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def _rss_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        kib = _status_kib("VmRSS")
        return None if kib is None else kib * 1024


def _ru_maxrss_bytes() -> int:
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


@dataclass
class MemoryProbe:
    """Peak memory over a stretch of code.

    CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats`` (tensor memory
    of the caching allocator). CPU: the process's peak resident set size; the kernel's peak
    counter is reset at :meth:`start` where Linux allows it (``method="vmhwm-reset"``), else
    the process-lifetime ``ru_maxrss`` is used (``method="ru_maxrss"``: a high-water mark that
    never goes down, so a phase that needs less than an earlier one shows no increase).

    Attributes after :meth:`stop`: ``peak_mib`` (absolute peak during the stretch) and
    ``delta_mib`` (peak minus the usage at :meth:`start`: what the stretch itself added).
    """

    device: torch.device
    method: str = ""
    peak_mib: float | None = None
    delta_mib: float | None = None
    _start: int | None = None

    def start(self) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.method = "cuda-max-memory-allocated"
            self._start = torch.cuda.memory_allocated(self.device)
            return
        self.method = "vmhwm-reset" if _reset_rss_peak() else "ru_maxrss"
        self._start = _rss_bytes() if self.method == "vmhwm-reset" else _ru_maxrss_bytes()

    def stop(self) -> None:
        if self.device.type == "cuda":
            synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.method == "vmhwm-reset":
            peak = _status_kib("VmHWM") * 1024
        else:
            peak = _ru_maxrss_bytes()
        self.peak_mib = round(peak / MiB, 1)
        self.delta_mib = None if self._start is None else round((peak - self._start) / MiB, 1)


def summarize_times(times: list[float]) -> dict:
    """Median, mean, min and max (seconds) and the raw list."""
    return {
        "median_s": statistics.median(times),
        "mean_s": statistics.fmean(times),
        "min_s": min(times),
        "max_s": max(times),
        "iterations": len(times),
        "times_s": [round(t, 6) for t in times],
    }


def measure(step: Callable[[], object], iters: int, warmup: int, device: torch.device) -> dict:
    """Time ``step`` (``warmup`` unmeasured calls, then ``iters`` measured ones) and its memory.

    Returns:
        :func:`summarize_times` fields plus ``peak_memory_mib``, ``peak_memory_delta_mib`` and
        ``memory_method`` (see :class:`MemoryProbe`; measured over the timed calls only).
    """
    for _ in range(warmup):
        step()
    synchronize(device)
    probe = MemoryProbe(device)
    probe.start()
    times = []
    for _ in range(iters):
        begin = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - begin)
    probe.stop()
    result = summarize_times(times)
    result.update(
        peak_memory_mib=probe.peak_mib,
        peak_memory_delta_mib=probe.delta_mib,
        memory_method=probe.method,
    )
    return result


def measure_interleaved(
    steps: dict[str, Callable[[], object]], iters: int, device: torch.device
) -> dict[str, dict]:
    """Time several (already warmed-up) steps in turns: ``iters`` rounds, each calling every
    step once, so that a drift of the machine (clock, other load) hits all of them alike.

    Returns:
        name -> :func:`summarize_times` fields.
    """
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(iters):
        for name, step in steps.items():
            synchronize(device)
            begin = time.perf_counter()
            step()
            synchronize(device)
            times[name].append(time.perf_counter() - begin)
    return {name: summarize_times(values) for name, values in times.items()}


def write_result(path: str, payload: dict) -> str:
    """Write ``payload`` as indented JSON (creating the folder); returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(payload, f, indent=2)
        f.write("\n")
    return path
