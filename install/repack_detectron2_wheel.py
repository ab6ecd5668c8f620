"""Rebuild PyPI's ``sal-detectron2==0.7.2`` wheel so that it installs on any CPython 3.

The published wheel carries official detectron2 (commit ``a59f0563``) but is tagged ``cp310``,
ships a Python 3.10 ``_C`` extension that other Pythons never load, and declares metadata that does
not fit (``numpy<2``, ``black``; ``fvcore`` and ``iopath`` missing). This script verifies the
downloaded file's sha256, drops the extension, fixes the metadata and tags, and writes a new
``py3-none-any`` wheel with a regenerated ``RECORD``. See ``../shared/docs/dependencies.md``.

Usage: ``python install/repack_detectron2_wheel.py IN.whl OUT_DIR``; prints the new wheel's path.
"""

import base64
import hashlib
import os
import sys
import zipfile

EXPECTED_SHA256 = "491af0c7f79bdb2d178e46f6cb16a97c4ac968d45c41ea3f6b6435d59bbee561"
DIST_INFO = "sal_detectron2-0.7.2.dist-info"
DROPPED_REQUIREMENTS = ("numpy<2", "black")
ADDED_REQUIREMENTS = ("numpy", "fvcore", "iopath>=0.1.7,<0.1.11", "scipy")


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fix_metadata(text):
    lines = []
    for line in text.splitlines():
        if line.startswith("Requires-Dist:"):
            requirement = line.split(":", 1)[1].strip()
            if requirement in DROPPED_REQUIREMENTS:
                continue
        lines.append(line)
    insert_at = max(i for i, line in enumerate(lines) if line.startswith("Requires-Dist:")) + 1
    for requirement in reversed(ADDED_REQUIREMENTS):
        lines.insert(insert_at, f"Requires-Dist: {requirement}")
    return "\n".join(lines) + "\n"


def _fix_wheel(text):
    lines = []
    for line in text.splitlines():
        if line.startswith("Tag:"):
            line = "Tag: py3-none-any"
        elif line.startswith("Root-Is-Purelib:"):
            line = "Root-Is-Purelib: true"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _record_line(name, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def repack(src, out_dir):
    actual = _sha256(src)
    if actual != EXPECTED_SHA256:
        raise SystemExit(
            f"repack: {src} has sha256 {actual}, expected {EXPECTED_SHA256}; "
            "refusing to install an unverified detectron2 wheel"
        )
    os.makedirs(out_dir, exist_ok=True)
    dst = os.path.join(out_dir, "sal_detectron2-0.7.2-py3-none-any.whl")
    record = []
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            name = info.filename
            if name.endswith(".so") or name == f"{DIST_INFO}/RECORD":
                continue
            data = zin.read(name)
            if name == f"{DIST_INFO}/METADATA":
                data = _fix_metadata(data.decode()).encode()
            elif name == f"{DIST_INFO}/WHEEL":
                data = _fix_wheel(data.decode()).encode()
            zout.writestr(name, data)
            record.append(_record_line(name, data))
        record.append(f"{DIST_INFO}/RECORD,,")
        zout.writestr(f"{DIST_INFO}/RECORD", "\n".join(record) + "\n")
    return dst


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(repack(sys.argv[1], sys.argv[2]))
