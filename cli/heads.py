"""``demo``, ``head-info`` and ``apply``: a head on its own (rendered, described) and a clip applied to a head in a
.blend."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core import console
from .common import EMBEDDING_HELP, EXIT_OK, RENDER_SUFFIXES, _head_for, _print_take


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``demo``, ``head-info`` and ``apply`` commands."""
    demo = sub.add_parser("demo", help="render the default head (neutral + expressions) and save a .blend")
    demo.add_argument("--out", default="out", help="output folder (default: out)")
    demo.add_argument("--head", default="default", help="'default' or a head file")
    demo.add_argument("--resolution", type=int, default=320, help="pixels per side of each picture (default: 320)")
    demo.add_argument("--samples", type=int, default=16, help="Cycles samples per pixel (default: 16)")
    demo.add_argument("--verbose", action="store_true", help="also show Blender's own output")
    demo.set_defaults(func=_cmd_demo)

    info = sub.add_parser("head-info", help="describe a head: default, a FLAME .pkl/.npz or a LatticeTalk head .npz")
    info.add_argument("head", nargs="?", default="default",
                      help="'default' (the bundled head), a FLAME .pkl/.npz or a LatticeTalk head .npz (default: default)")
    info.add_argument("--embedding", default=None, help=EMBEDDING_HELP)
    info.set_defaults(func=_cmd_head_info)

    apply = sub.add_parser("apply", help="apply an AnimationClip (.npz/.json) as a take and save a .blend")
    apply.add_argument("clip", help="AnimationClip (.npz/.json)")
    apply.add_argument("--out", required=True, help="the .blend to write")
    apply.add_argument("--scene", default=None, help="start from this .blend (with one LatticeTalk head) instead of a new scene")
    apply.add_argument("--head", default="default", help="head for a new scene: 'default' or a FLAME/LatticeTalk head file")
    apply.add_argument("--embedding", default=None, help=EMBEDDING_HELP)
    apply.add_argument("--take", default=None, help="take name (default: the clip file's name)")
    apply.add_argument("--sound", default=None, help="audio to place at the take's start")
    apply.add_argument("--key-tolerance", type=float, default=0.0, help="reduce keys within this tolerance (0: every frame)")
    apply.add_argument("--render", default=None, help="also render a preview video (.mp4) or PNG frames")
    apply.add_argument("--verbose", action="store_true", help="also show Blender's own output")
    apply.set_defaults(func=_cmd_apply)


def _cmd_demo(args: argparse.Namespace) -> int:
    """Build the default head in Blender, render neutral + six expressions, save the scene."""
    from ..core.heads import create
    from ..scene.preview import render_expression_sheet

    head = create(args.head)
    out = Path(args.out)
    png = render_expression_sheet(head, out / "default_head.png", resolution=args.resolution, samples=args.samples,
                                  blend_path=out / "default_head.blend")
    print(f"wrote {out / 'default_head.blend'} and {png}", file=console.stdout())
    return EXIT_OK


def _cmd_head_info(args: argparse.Namespace) -> int:
    from ..core.heads import create

    head = create(args.head, landmark_embedding=args.embedding)
    n_landmarks = 0 if head.landmarks is None else len(head.landmarks.face_index)
    print(f"{head.head_id}: {head.n_vertices} vertices, {len(head.faces)} triangles, {head.n_shape} shape and "
          f"{head.n_expression} expression components (range {head.expression_range}), {n_landmarks} MediaPipe points")
    for key, value in head.info.items():
        print(f"  {key}: {value}")
    return EXIT_OK


def _cmd_apply(args: argparse.Namespace) -> int:
    """An AnimationClip file → a take in a .blend (a new scene with a head, or --scene base.blend)."""
    from ..core.audio import check_sound_file
    from ..core.clip import load_clip
    from ..core.validate import output_path
    from ..scene.character import write_take_on_target
    from ..scene.session import new_head_scene, open_scene_head, render_preview, save_blend, setup_preview

    clip = load_clip(args.clip)  # all input checks before any scene work
    sound = check_sound_file(args.sound) if args.sound else None
    inputs = (args.clip, args.scene, args.sound, args.head, args.embedding)
    output_path(args.out, "--out", (".blend",), inputs)
    if args.render:
        output_path(args.render, "--render", RENDER_SUFFIXES, inputs)
    if args.scene:
        objects = open_scene_head(Path(args.scene))
    else:
        objects = new_head_scene(_head_for(args, clip), args.head, clip.fps)
    import bpy

    result = write_take_on_target(clip, objects, bpy.context.scene, args.take or Path(args.clip).stem,
                                  key_tolerance=args.key_tolerance, sound_path=sound)
    _print_take(result)
    out = Path(args.out)
    if not args.scene:  # a new scene gets the preview's camera and settings; a shot of your own keeps its own
        setup_preview(objects, Path(args.render) if args.render else out.with_suffix(".mp4"))
    out = save_blend(out)
    print(f"wrote {out}: take '{result.name}', frames {result.frame_start}-{result.frame_end}, {result.keys} keys",
          file=console.stdout())
    if args.render:
        print(f"wrote {render_preview(objects, Path(args.render))}", file=console.stdout())
    return EXIT_OK
