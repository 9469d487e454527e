"""``export``, ``convert`` and ``eval``: clip and motion-track files (no Blender, except export to glTF/FBX)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import LatticeTalkError
from .common import EMBEDDING_HELP, EXIT_OK, _head_for, _print_take


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``export``, ``convert`` and ``eval`` commands."""
    exp = sub.add_parser("export", help="a clip → Live Link Face CSV, glTF 2.0 or FBX (head or your character), npz/json")
    exp.add_argument("clip", help="AnimationClip (.npz/.json)")
    exp.add_argument("--format", required=True, choices=("livelink", "gltf", "fbx", "npz", "json"), help="livelink (CSV), gltf, fbx, npz or json")
    exp.add_argument("--out", required=True, help="file to write (.csv, .glb/.gltf, .fbx, .npz, .json)")
    exp.add_argument("--head", default="default", help="without --scene: the head to build (gltf/fbx) or to convert "
                                                       "the clip to (npz/json): 'default' or a head file")
    exp.add_argument("--embedding", default=None, help=EMBEDDING_HELP)
    exp.add_argument("--scene", default=None, help="gltf/fbx: a .blend holding your character")
    exp.add_argument("--target", default=None, help="with --scene: the name of the mesh (or head) to drive")
    exp.add_argument("--take", default=None, help="take name (default: the clip file's name)")
    exp.set_defaults(func=_cmd_export)

    conv = sub.add_parser("convert", help="a clip made for one head → another head (default head ↔ FLAME)")
    conv.add_argument("clip", help="AnimationClip (.npz/.json)")
    conv.add_argument("--source", default="default", help="the head the clip was made for ('default' or a head file)")
    conv.add_argument("--target", required=True, help="the head to convert to ('default' or a head file)")
    conv.add_argument("--embedding", default=None, help=EMBEDDING_HELP)
    conv.add_argument("--out", required=True, help="the converted clip (.npz/.json)")
    conv.set_defaults(func=_cmd_convert)

    ev = sub.add_parser("eval", help="lip-sync metrics of a predicted motion track against a reference")
    ev.add_argument("--pred", required=True, help="predicted MotionTrack (.npz)")
    ev.add_argument("--ref", required=True, help="reference MotionTrack (.npz), with phonemes and audio")
    ev.add_argument("--out", default="out", help="folder for eval.json and eval.png (default: out)")
    ev.set_defaults(func=_cmd_eval)


def _cmd_export(args: argparse.Namespace) -> int:
    """A clip → Live Link Face CSV or another clip file (no Blender), or glTF/FBX of a head or character with it."""
    from ..core.clip import load_clip
    from ..core.validate import output_path

    clip = load_clip(args.clip)
    if args.format in ("gltf", "fbx"):
        from ..scene.export import SCENE_FORMATS

        suffixes = SCENE_FORMATS[args.format]
    else:
        suffixes = (".csv",) if args.format == "livelink" else (f".{args.format}",)
    out = output_path(args.out, "--out", suffixes, (args.clip, args.scene, args.head, args.embedding))
    if args.format == "livelink":
        from ..core.livelink import write_livelink_csv

        write_livelink_csv(clip, out)
    elif args.format in ("npz", "json"):
        from ..core.head_convert import clip_for_head, conversion_summary

        head = _head_for(args, clip)
        clip = clip_for_head(clip, head.head_id, lambda: head)
        summary = conversion_summary(clip)
        if summary:
            print(summary)
        clip.save(out)
    else:
        import bpy

        from ..scene.character import open_scene_target, write_take_on_target
        from ..scene.export import export_take
        from ..scene.session import new_head_scene

        if bool(args.scene) != bool(args.target):
            raise LatticeTalkError("--scene and --target go together: the .blend and the name of the mesh to drive")
        if args.scene:
            objects = open_scene_target(Path(args.scene), args.target)
        else:
            objects = new_head_scene(_head_for(args, clip), args.head, clip.fps)
        take = args.take or Path(args.clip).stem
        out.parent.mkdir(parents=True, exist_ok=True)
        _print_take(write_take_on_target(clip, objects, bpy.context.scene, take))
        export_take(objects, take, out, args.format)
    print(f"wrote {out}")
    return EXIT_OK


def _cmd_convert(args: argparse.Namespace) -> int:
    """A clip made for one head → the same performance on another head (default ↔ FLAME), through the motion space."""
    from ..core.clip import load_clip
    from ..core.head_convert import convert_clip
    from ..core.heads import create
    from ..core.validate import output_path

    clip = load_clip(args.clip)
    output_path(args.out, "--out", (".npz", ".json"), (args.clip, args.source, args.target, args.embedding))
    source = create(args.source, landmark_embedding=args.embedding)
    target = create(args.target, landmark_embedding=args.embedding)
    print(f"wrote {convert_clip(clip, source, target).save(args.out)}")
    return EXIT_OK


def _cmd_eval(args: argparse.Namespace) -> int:
    """Compare a predicted MotionTrack with a reference: print a table, write eval.json and eval.png."""
    import json

    from ..core.metrics import evaluate, format_table, plot_comparison, to_json_ready
    from ..core.motion_file import load_motion
    from ..core.validate import input_file

    tracks = []
    for path in (args.pred, args.ref):
        try:
            tracks.append(load_motion(input_file(path, "motion", "give a motion file (.npz) written by LatticeTalk")))
        except (KeyError, ValueError) as exc:  # a motion file with missing or invalid fields
            raise LatticeTalkError(f"{path}: not a valid motion file ({exc})") from exc
    pred, ref = tracks
    results = evaluate(pred, ref)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(format_table(results))
    (out / "eval.json").write_text(json.dumps(to_json_ready(results), indent=2) + "\n")
    png = plot_comparison(pred, ref, out / "eval.png", title=f"{Path(args.pred).name} vs {Path(args.ref).name}")
    print(f"wrote {out / 'eval.json'} and {png}")
    return EXIT_OK
