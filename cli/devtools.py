"""``build-extension`` and ``bench``: the installable Blender extension and the benchmarks."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import LatticeTalkError
from .common import DEVICE_CHOICES, EXIT_FAILED, EXIT_OK, PACKAGE_DIR


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``build-extension`` and ``bench`` commands."""
    ext = sub.add_parser("build-extension", help="validate blender_manifest.toml and build the installable extension zip")
    ext.add_argument("--out", default="dist", help="output folder (default: dist)")
    ext.set_defaults(func=_cmd_build_extension)

    bench = sub.add_parser("bench", help="run a benchmark, print a table and write JSON")
    bench.add_argument("name", choices=["head", "scene", "preview", "corpus", "speech", "video", "video-model", "fuzz", "farm"],
                       help="which benchmark (preview: the speed of generate --render's preview; fuzz: 1000 mutated "
                            "WAVs through the loader and the speech pipeline; farm: a 40-line batch on one machine and "
                            "on 1 and 2 local Dask workers)")
    bench.add_argument("--json", default=None, help="where to write the JSON (default: out/bench_<name>.json)")
    bench.add_argument("--device", choices=DEVICE_CHOICES, default="cpu",
                       help="speech: the torch device the model runs on (cuda falls back to the CPU with a notice)")
    bench.set_defaults(func=_cmd_bench)


def blender_extension_tool() -> Path:
    """Blender's own extension CLI (``blender_ext.py``: validate, build), shipped inside the bpy wheel."""
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    if spec is None or spec.origin is None:
        raise LatticeTalkError("the bpy wheel is not installed: pip install -c constraints.txt -e '.[blender]'")
    found = sorted(Path(spec.origin).parent.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise LatticeTalkError(f"no blender_ext.py inside {Path(spec.origin).parent}; reinstall the bpy wheel")
    return found[-1]


def _cmd_build_extension(args: argparse.Namespace) -> int:
    """Validate the manifest and zip the extension with Blender's own tool (it applies [build] excludes)."""
    import subprocess

    tool, source = blender_extension_tool(), PACKAGE_DIR
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for cmd in (["validate", str(source)], ["build", "--source-dir", str(source), "--output-dir", str(out)]):
        if subprocess.run([sys.executable, str(tool), *cmd]).returncode != 0:
            return EXIT_FAILED
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    from ..bench import run_benchmark

    if args.device != "cpu" and args.name != "speech":
        raise LatticeTalkError(f"--device is for 'bench speech'; 'bench {args.name}' runs no model on a device")
    run_benchmark(args.name, Path(args.json) if args.json else None, args.device, args.run_cli)
    return EXIT_OK
