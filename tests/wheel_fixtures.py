"""A pure-Python wheel written by hand, so pip can install something real offline (``--no-index``)."""

from __future__ import annotations

import importlib
import sys
import zipfile
from pathlib import Path

import pytest

FAKE = "lt_fake_dependency"


def write_wheel(folder: Path, name: str = FAKE, version: str = "0.1") -> Path:
    """A pure-Python wheel written by hand (no setuptools, no network)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VALUE = 42\nVERSION = {version!r}\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: lattice_talk-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{path},,\n" for path in files) + f"{dist}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in files.items():
            zf.writestr(path, text)
        zf.writestr(f"{dist}/RECORD", record)
    return wheel


@pytest.fixture
def clean_path(monkeypatch):
    """Restore sys.path and forget the test package after a real install."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    yield
    for name in [m for m in sys.modules if m == FAKE or m.startswith(FAKE + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()
