"""Reading checkpoint files without unrestricted unpickling.

``torch.load(weights_only=True)`` (torch's default since 2.6) only rebuilds tensors and plain
Python containers. Published DETR checkpoints also hold a few other objects next to the weights:
the training script's ``argparse.Namespace`` (``checkpoint["args"]``) and numpy scalars. Those
types are harmless to rebuild, so :func:`safe_load` allows exactly them
(:data:`SAFE_GLOBALS`) and nothing else. A file that needs any other type is refused with
:class:`UnsafeCheckpointError`, which names the types and the explicit opt-in
(``allow_unsafe=True``, ``--allow-unsafe-pickle`` on the converter's command line): it is never
unpickled without restrictions behind the caller's back.

Files that cannot be read (truncated, corrupted, not a torch checkpoint) raise
:class:`CheckpointReadError` saying so and what to do. torch's own advice in its message (that
re-running with ``weights_only=False`` "will likely succeed") is left out: for such files it is
wrong, and for the others it would skip the safety this module exists for.
"""

from __future__ import annotations

import argparse
import logging
import mmap
import os
import pickle
import re
from typing import Any

import numpy as np
import torch
from detectron2.utils.file_io import PathManager

__all__ = [
    "SAFE_GLOBALS",
    "CheckpointReadError",
    "UnsafeCheckpointError",
    "safe_globals_names",
    "safe_load",
]

logger = logging.getLogger(__name__)


def _numpy_globals() -> list[Any]:
    """numpy scalars and dtypes, under the module paths numpy 1.x and 2.x pickle them with."""
    core = np._core if hasattr(np, "_core") else np.core  # numpy 2 renamed numpy.core
    multiarray = core.multiarray
    entries: list[Any] = [
        multiarray.scalar,
        (multiarray.scalar, "numpy.core.multiarray.scalar"),
        (multiarray.scalar, "numpy._core.multiarray.scalar"),
        np.dtype,
    ]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25 pickles dtypes through these classes
    if dtypes is not None:
        for name in (
            "BoolDType",
            "Int8DType",
            "Int16DType",
            "Int32DType",
            "Int64DType",
            "UInt8DType",
            "UInt16DType",
            "UInt32DType",
            "UInt64DType",
            "Float16DType",
            "Float32DType",
            "Float64DType",
        ):
            if hasattr(dtypes, name):
                entries.append(getattr(dtypes, name))
    return entries


#: Types (beyond torch's defaults) that :func:`safe_load` lets ``torch.load`` rebuild: the
#: ``argparse.Namespace`` of the official training scripts and numpy scalars/dtypes. Entries are
#: objects or ``(object, "module.name as pickled")`` pairs, as ``torch.serialization`` takes them.
SAFE_GLOBALS: tuple[Any, ...] = (argparse.Namespace, *_numpy_globals())


def safe_globals_names() -> set[str]:
    """Dotted names (as they appear in a pickle) of the types in :data:`SAFE_GLOBALS`."""
    names = set()
    for entry in SAFE_GLOBALS:
        if isinstance(entry, tuple):
            names.add(entry[1])
        else:
            names.add(f"{entry.__module__}.{entry.__qualname__}")
    return names


class CheckpointReadError(RuntimeError):
    """The file is not a readable torch checkpoint (truncated, corrupted or another format)."""


class UnsafeCheckpointError(CheckpointReadError):
    """The file holds Python objects of types outside :data:`SAFE_GLOBALS`.

    Attributes:
        path: the file.
        global_names: the dotted names of the refused types.
    """

    def __init__(self, path: str, global_names: list[str]):
        self.path = path
        self.global_names = list(global_names)
        super().__init__(
            f"{path} holds Python objects of types that safe loading does not rebuild: "
            f"{', '.join(self.global_names)}. The file was not loaded: unpickling them can run "
            "code stored in the file. If you trust its source, load it with unrestricted "
            "unpickling explicitly: `python -m detrdistill.convert --allow-unsafe-pickle ...` "
            "(or safe_load(path, allow_unsafe=True)); the converter writes a plain state dict "
            "that loads safely afterwards."
        )


_GLOBAL_IN_MESSAGE = re.compile(r"GLOBAL ([\w.]+)")


_DOTTED_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")


def _complete_in_file(local: str, name: str) -> bool:
    """Whether the GLOBAL opcode naming ``name`` is complete in the (legacy-format) file.

    A file cut inside the opcode makes the unpickler read a partial name (``numpy.dt``,
    ``collectio.``): the ``module\nname\n`` bytes of the opcode are then not in the file.
    """
    if not _DOTTED_NAME.fullmatch(name):
        return False
    module, _, attribute = name.rpartition(".")
    needle = f"{module}\n{attribute}\n".encode()
    try:
        with open(local, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return data.find(needle) >= 0
    except (OSError, ValueError):  # empty file, no mmap: cannot tell
        return True


def _globals_in_message(error: Exception) -> list[str]:
    return _GLOBAL_IN_MESSAGE.findall(str(error))


def _refused_globals(local: str, error: Exception) -> list[str]:
    """Names of the types in ``local`` that weights-only loading refuses (ours allowed).

    A partial name read from a file cut inside a GLOBAL opcode (``collectio.``) is not a type
    the file holds: it is left out, and the file is reported as truncated instead.
    """
    allowed = safe_globals_names()
    try:  # lists them all, but only for zip-format files (torch >= 1.6)
        names = list(torch.serialization.get_unsafe_globals_in_checkpoint(local))
    except Exception:  # legacy (torch < 1.6) format: read the one named in the error
        names = [name for name in _globals_in_message(error) if _complete_in_file(local, name)]
    return sorted({name for name in names if name not in allowed})


def safe_load(path: str, *, allow_unsafe: bool = False, map_location: Any = "cpu") -> Any:
    """Load a checkpoint file with ``torch.load(weights_only=True)`` plus :data:`SAFE_GLOBALS`.

    Args:
        path: local path, or any path detectron2's ``PathManager`` resolves (``detrdistill://``).
        allow_unsafe: use unrestricted unpickling (``weights_only=False``). Only for trusted
            files; never done unless asked for.
        map_location: passed to ``torch.load``.

    Returns:
        The unpickled object (usually a dict holding ``"model"``).

    Raises:
        FileNotFoundError: the file does not exist.
        UnsafeCheckpointError: the file needs types outside :data:`SAFE_GLOBALS` (named in the
            message, with the opt-in to use).
        CheckpointReadError: the file is truncated, corrupted or not a torch checkpoint.
    """
    local = PathManager.get_local_path(path)
    if not os.path.isfile(local):
        raise FileNotFoundError(f"checkpoint {path!r} does not exist")
    if allow_unsafe:
        logger.warning("Loading %s with unrestricted unpickling (allow_unsafe=True)", path)
        try:
            return torch.load(local, map_location=map_location, weights_only=False)
        except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, KeyError) as error:
            raise _read_error(path, error, weights_only=False) from error
    if not hasattr(torch.serialization, "safe_globals"):
        raise RuntimeError(
            f"reading {path} safely needs torch >= 2.5 (torch.serialization.safe_globals)"
        )
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            return torch.load(local, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        refused = _refused_globals(local, error)
        if refused:
            raise UnsafeCheckpointError(path, refused) from error
        raise _read_error(path, error) from error
    except Exception as error:  # EOFError, RuntimeError (zip), KeyError (not a torch file)...
        raise _read_error(path, error) from error


#: Where torch's explanations and advice start in its messages; everything from there is cut.
_ADVICE_MARKERS = (
    " Please use `torch.serialization",
    " This is an internal miniz error",
    "Check the documentation of torch.load",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _torch_reason(error: Exception) -> str:
    """What torch says is wrong, without its advice (``weights_only=False`` "will likely
    succeed", allow-listing the type): one line."""
    text = _ANSI.sub("", str(error))
    marker = "WeightsUnpickler error:"
    if marker in text:  # the weights-only unpickler: the reason follows its long preamble
        text = text[text.index(marker) + len(marker) :]
    for cut in _ADVICE_MARKERS:
        if cut in text:
            text = text[: text.index(cut)]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = lines[0].rstrip(".") if lines else ""
    if "weights_only" in reason:  # any other wording of torch's advice
        reason = ""
    return f"{type(error).__name__}: {reason}" if reason else type(error).__name__


def _read_error(path: str, error: Exception, weights_only: bool = True) -> CheckpointReadError:
    """The error for a file torch cannot read, saying what is wrong and what to do."""
    local = PathManager.get_local_path(path)
    size = os.path.getsize(local)
    reason = _torch_reason(error)
    cut_global = any(  # a GLOBAL opcode cut short: the file ends inside it
        not _complete_in_file(local, name) for name in _globals_in_message(error)
    )
    truncated = (
        size == 0 or cut_global or isinstance(error, EOFError) or "central directory" in str(error)
    )
    if truncated:
        what = (
            "the file is truncated (an interrupted download or copy) or corrupted; no way of "
            "loading it can repair that"
        )
    elif weights_only and isinstance(error, pickle.UnpicklingError):
        what = (
            "the file is corrupted, or holds data that safe (weights-only) loading refuses; "
            "a published checkpoint from a source you trust can be converted with "
            "`python -m detrdistill.convert` (see docs/converting_teachers.md)"
        )
    else:
        what = "the file is truncated, corrupted or not a torch checkpoint (.pth)"
    return CheckpointReadError(
        f"{path} is not a readable torch checkpoint ({size} bytes; {reason}): {what}. Copy or "
        "download it again (compare its size or checksum with the source) or re-create it "
        "(train_net.py, python -m detrdistill.convert), then point the config key at it."
    )
