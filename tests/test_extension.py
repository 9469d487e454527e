"""The extension manifest passes Blender's own validator, and the zip holds what Blender needs."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile

from lattice_talk.cli import blender_extension_tool, main
from repo_files import REPO, model_files


def test_manifest_passes_blenders_validator():
    result = subprocess.run([sys.executable, str(blender_extension_tool()), "validate", str(REPO)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    manifest = tomllib.loads((REPO / "blender_manifest.toml").read_text())
    assert manifest["id"] == "lattice_talk" and manifest["blender_version_min"] == "4.2.0"
    assert set(manifest.get("permissions", {})) <= {"files", "network"}  # only what is used


def test_build_extension_zip(tmp_path):
    assert main(["build-extension", "--out", str(tmp_path)]) == 0
    (zip_path,) = tmp_path.glob("lattice_talk-*.zip")
    names = set(zipfile.ZipFile(zip_path).namelist())
    assert {"blender_manifest.toml", "__init__.py", "core/heads.py", "vendor_models/speech/encoder/model.safetensors"} <= names
    assert set(model_files()) <= names  # every model file, at any depth
    assert not any(n.startswith(("tests/", "tools/", ".ci/", ".venv")) or n in ("setup.py", "pyproject.toml") for n in names)
    lab = ("core/data/", "core/real_av/", "core/metrics.py", "core/speech/train.py", "core/speech/bilabial_train.py",
           "core/motion/video_train.py", "bench.py")
    assert not any(n.startswith(lab) for n in names)  # the add-on generates without the lab (test_packaging runs it)
