"""``python -m lattice_talk`` — the command line. Subcommands import what they need when they run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .core.errors import LatticeTalkError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2


def _cmd_demo(args: argparse.Namespace) -> int:
    """Build the default head in Blender, render neutral + six expressions, save the scene."""
    from .core.heads import create
    from .scene.preview import render_expression_sheet

    head = create(args.head)
    out = Path(args.out)
    png = render_expression_sheet(head, out / "default_head.png", resolution=args.resolution, samples=args.samples,
                                  blend_path=out / "default_head.blend")
    print(f"wrote {out / 'default_head.blend'} and {png}")
    return EXIT_OK


def _cmd_head_info(args: argparse.Namespace) -> int:
    from .core.heads import create

    head = create(args.head, landmark_embedding=args.embedding)
    n_landmarks = 0 if head.landmarks is None else len(head.landmarks.face_index)
    print(f"{head.head_id}: {head.n_vertices} vertices, {len(head.faces)} triangles, {head.n_shape} shape and "
          f"{head.n_expression} expression components (range {head.expression_range}), {n_landmarks} MediaPipe points")
    for key, value in head.info.items():
        print(f"  {key}: {value}")
    return EXIT_OK


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

    tool, source = blender_extension_tool(), Path(__file__).resolve().parent
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for cmd in (["validate", str(source)], ["build", "--source-dir", str(source), "--output-dir", str(out)]):
        if subprocess.run([sys.executable, str(tool), *cmd]).returncode != 0:
            return EXIT_FAILED
    return EXIT_OK


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_benchmark

    run_benchmark(args.name, Path(args.json) if args.json else None)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lattice_talk", description="LatticeTalk: speech → editable FLAME face animation")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="render the default head (neutral + expressions) and save a .blend")
    demo.add_argument("--out", default="out", help="output folder (default: out)")
    demo.add_argument("--head", default="default", help="'default' or a head file")
    demo.add_argument("--resolution", type=int, default=320)
    demo.add_argument("--samples", type=int, default=16)
    demo.set_defaults(func=_cmd_demo)

    info = sub.add_parser("head-info", help="describe a head: default, a FLAME .pkl/.npz or a LatticeTalk head .npz")
    info.add_argument("head", nargs="?", default="default")
    info.add_argument("--embedding", default=None, help="FLAME's mediapipe_landmark_embedding.npz")
    info.set_defaults(func=_cmd_head_info)

    ext = sub.add_parser("build-extension", help="validate blender_manifest.toml and build the installable extension zip")
    ext.add_argument("--out", default="dist", help="output folder (default: dist)")
    ext.set_defaults(func=_cmd_build_extension)

    bench = sub.add_parser("bench", help="run a benchmark, print a table and write JSON")
    bench.add_argument("name", choices=["head"])
    bench.add_argument("--json", default=None, help="where to write the JSON (default: out/bench_<name>.json)")
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LatticeTalkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
