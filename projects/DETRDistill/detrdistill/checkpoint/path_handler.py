"""The ``detrdistill://`` path prefix for checkpoints in a local cache folder.

``detrdistill://<relative path>`` resolves to ``<cache>/<relative path>`` where ``<cache>`` is
``$DETRDISTILL_CHECKPOINTS`` if set, else ``~/.cache/detrdistill/checkpoints``. Nothing is
downloaded: a missing file raises ``FileNotFoundError`` naming the path and how to obtain it.
``detrdistill://shipped/<file>`` is a file shipped in the package (:mod:`.shipped`), its sha256
checked whenever it is resolved.
The handler is registered on detectron2's global ``PathManager``, so ``DetectionCheckpointer``,
``train.init_checkpoint`` and ``PathManager.open`` understand the prefix.
"""

from __future__ import annotations

import os
from typing import IO, Any

from detectron2.utils.file_io import PathManager
from iopath.common.file_io import PathHandler

from .shipped import SHIPPED_FOLDER, shipped_path, weights_dir

__all__ = [
    "CHECKPOINTS_ENV",
    "PREFIX",
    "DetrDistillHandler",
    "checkpoint_cache_dir",
    "register_path_handler",
]

PREFIX = "detrdistill://"
CHECKPOINTS_ENV = "DETRDISTILL_CHECKPOINTS"


def checkpoint_cache_dir() -> str:
    """Folder that ``detrdistill://`` paths resolve into (read from the environment each call).

    Returns:
        str: ``$DETRDISTILL_CHECKPOINTS`` or ``~/.cache/detrdistill/checkpoints``.
    """
    folder = os.environ.get(CHECKPOINTS_ENV) or os.path.join(
        "~", ".cache", "detrdistill", "checkpoints"
    )
    return os.path.expanduser(folder)


class DetrDistillHandler(PathHandler):
    """iopath handler mapping ``detrdistill://NAME`` to a file in :func:`checkpoint_cache_dir`."""

    def _get_supported_prefixes(self) -> list[str]:
        return [PREFIX]

    def _resolve(self, path: str) -> str:
        name = path[len(PREFIX) :].lstrip("/")
        if name.startswith(SHIPPED_FOLDER):
            return str(weights_dir() / name[len(SHIPPED_FOLDER) :])
        return os.path.join(checkpoint_cache_dir(), name)

    def _get_local_path(self, path: str, force: bool = False, **kwargs: Any) -> str:
        self._check_kwargs(kwargs)
        name = path[len(PREFIX) :].lstrip("/")
        if name.startswith(SHIPPED_FOLDER):
            return shipped_path(name[len(SHIPPED_FOLDER) :])
        local = self._resolve(path)
        if not os.path.isfile(local):
            raise FileNotFoundError(
                f"{path} resolves to {local}, which does not exist. detrdistill:// checkpoints "
                f"are not downloaded automatically: get the file listed for it in the README's "
                f"model table (or train it with train_net.py) and put it there, or set "
                f"${CHECKPOINTS_ENV} to the folder that holds it."
            )
        return local

    def _open(self, path: str, mode: str = "r", buffering: int = -1, **kwargs: Any) -> IO:
        self._check_kwargs(kwargs)
        if any(flag in mode for flag in "wax"):
            if path[len(PREFIX) :].lstrip("/").startswith(SHIPPED_FOLDER):
                raise PermissionError(f"{path} is a shipped file; it is read-only")
            local = self._resolve(path)
            os.makedirs(os.path.dirname(local) or ".", exist_ok=True)
        else:
            local = self._get_local_path(path)
        return open(local, mode, buffering=buffering)

    def _exists(self, path: str, **kwargs: Any) -> bool:
        self._check_kwargs(kwargs)
        return os.path.exists(self._resolve(path))

    def _isfile(self, path: str, **kwargs: Any) -> bool:
        self._check_kwargs(kwargs)
        return os.path.isfile(self._resolve(path))


def register_path_handler() -> None:
    """Register :class:`DetrDistillHandler` on detectron2's ``PathManager`` (idempotent)."""
    try:
        PathManager.register_handler(DetrDistillHandler(), allow_override=False)
    except KeyError:  # iopath refuses a second handler for the prefix: already registered
        pass
