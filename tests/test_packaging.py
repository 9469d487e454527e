"""Packaging: the wheel and the sdist carry every file the models need and build without setuptools warnings
(the extension zip's contents: test_extension.py); the wheel installed by pip into a fresh environment, and the zip installed by
Blender's extension installer into a fresh user folder, each generate a take from speech with the shipped model.

Blender 5.0 only (.ci/run's Blender 4.2 pass skips this module). Nothing is downloaded: the builds use the
installed setuptools without build isolation, and the fresh environment reaches the already installed torch,
bpy and friends through a path file (the repository's own editable install is not on that path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy", reason="packaging is checked with the bpy wheel")
if bpy.app.version < (5, 0, 0):
    pytest.skip("packaging is checked once, on Blender 5.0", allow_module_level=True)

from lattice_talk.cli import EXIT_OK, main  # noqa: E402
from lattice_talk.core.rerun import RUN_KEY, folder_sha256  # noqa: E402
from repo_files import REPO, model_files, shipped_files  # noqa: E402

SAMPLE = REPO / "vendor_models" / "samples" / "hello.wav"
pytestmark = pytest.mark.blender


def clean_env() -> dict:
    """This environment without what would change a build's output (no byte-compiling switch) or point Python
    at the repository (the test's own PYTHONPATH)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A copy of the clone built as a wheel and an sdist (the repository itself stays untouched)."""
    root = tmp_path_factory.mktemp("packaging")
    source, dist = root / "src", root / "dist"
    for name in shipped_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        (source / name).write_bytes((REPO / name).read_bytes())
    code = "from setuptools import build_meta as b; import sys; d = sys.argv[1]; b.build_wheel(d); b.build_sdist(d)"
    result = subprocess.run([sys.executable, "-c", code, str(dist)], cwd=source, capture_output=True, text=True,
                            env=clean_env(), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,), (sdist,) = dist.glob("*.whl"), dist.glob("*.tar.gz")
    return root, wheel, sdist, result.stdout + result.stderr


def test_wheel_and_sdist_carry_every_model_file_and_build_without_warnings(built):
    _, wheel, sdist, output = built
    assert "warning" not in output.lower(), output
    models = model_files()
    assert {"vendor_models/speech/encoder/model.safetensors", "vendor_models/video/meshconv/video_model.safetensors",
            "vendor_models/speech/decoder.safetensors", "vendor_models/default_head/default_head.npz"} <= set(models)
    in_wheel = set(zipfile.ZipFile(wheel).namelist())
    assert {f"lattice_talk/{name}" for name in models} <= in_wheel
    assert {"lattice_talk/core/pipeline.py", "lattice_talk/scene/session.py", "lattice_talk/blender_manifest.toml"} <= in_wheel
    assert not any(name.startswith(("lattice_talk/tests/", "lattice_talk/tools/", "lattice_talk/docs/")) for name in in_wheel)
    top = sdist.name.removesuffix(".tar.gz")
    in_sdist = set(tarfile.open(sdist).getnames())
    assert {f"{top}/{name}" for name in models} <= in_sdist and f"{top}/setup.py" in in_sdist


def test_a_pip_installed_wheel_generates_a_take(built):
    root, wheel, _, _ = built
    env_dir, work = root / "fresh", root / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True, timeout=300)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   timeout=300, env=clean_env())
    fresh_site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                     capture_output=True, text=True, check=True).stdout.strip())
    (fresh_site / "reuse_installed_stack.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    wav = work / "line.wav"
    wav.write_bytes(SAMPLE.read_bytes())
    result = subprocess.run([str(python), "-m", "lattice_talk", "generate", "line.wav", "--out", "take.blend", "--quiet"],
                            cwd=work, capture_output=True, text=True, env=clean_env(), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"wrote {work / 'take.blend'}"
    where = subprocess.run([str(python), "-c", "import lattice_talk; print(lattice_talk.__file__)"], cwd=work,
                           capture_output=True, text=True, check=True, env=clean_env()).stdout.strip()
    assert Path(where).is_relative_to(fresh_site)  # the wheel's copy ran, not the clone
    bpy.ops.wm.open_mainfile(filepath=str(work / "take.blend"))
    run = json.loads(bpy.context.scene[RUN_KEY])
    assert run["model"]["pipeline"] == "speech" and run["model"]["sha256"] == folder_sha256(REPO / "vendor_models" / "speech")


INSTALL_AND_GENERATE = """
import sys, bpy
zip_path, wav, out = sys.argv[1:]
assert bpy.ops.extensions.package_install_files(filepath=zip_path, repo="user_default", enable_on_install=True) == {"FINISHED"}
module = sys.modules["bl_ext.user_default.lattice_talk"]
print("MODULE", module.__file__)
assert bpy.ops.lattice_talk.add_head() == {"FINISHED"}
assert bpy.ops.lattice_talk.generate_from_audio(audio_path=wav, take_name="hello") == {"FINISHED"}
bpy.ops.wm.save_as_mainfile(filepath=out)
"""


def test_a_zip_installed_extension_generates_a_take(tmp_path):
    assert main(["build-extension", "--out", str(tmp_path / "dist")]) == EXIT_OK
    (zip_path,) = (tmp_path / "dist").glob("lattice_talk-*.zip")
    user = tmp_path / "blender_user"
    env = {**clean_env(), "BLENDER_USER_RESOURCES": str(user)}
    out, script = tmp_path / "take.blend", tmp_path / "install_and_generate.py"
    script.write_text(INSTALL_AND_GENERATE)
    result = subprocess.run([sys.executable, str(script), str(zip_path), str(SAMPLE), str(out)], cwd=tmp_path,
                            capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    module = next(line.split(" ", 1)[1] for line in result.stdout.splitlines() if line.startswith("MODULE "))
    assert Path(module).is_relative_to(user)  # the installed extension ran, not the clone
    assert (Path(module).parent / "vendor_models" / "speech" / "encoder" / "model.safetensors").is_file()
    from lattice_talk.scene.head_builder import HEAD_ID_PROP, find_head
    from lattice_talk.scene.take_writer import list_takes

    bpy.ops.wm.open_mainfile(filepath=str(out))
    head = find_head(next(o for o in bpy.context.scene.objects if HEAD_ID_PROP in o))
    assert list_takes(head) == ["hello"]
