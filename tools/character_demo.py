"""README picture for "Use your own character": a take from speech driving a mesh that is not the default head.

The character is built from CC0 MakeHuman data (the default head's own identity targets, pushed far: older,
heavier, square jaw, hooked nose), then stripped of everything LatticeTalk knows it by — no head id, no armature —
and its 52 keys are renamed to another naming style (``MouthSmile_L``). It is then driven exactly as a user's
character is: auto-matched names, the jaw folded into ``JawOpen``. Needs the bpy wheel and torch.

    python tools/character_demo.py [--out docs/images/character_take.png]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
IDENTITY = {"head-age-incr": 1.0, "head-fat-incr": 0.8, "head-square": 0.8, "chin-prominent-incr": 0.8,
            "chin-width-incr": 0.6, "nose-hump-incr": 1.0, "nose-scale-vert-incr": 0.7, "nose-point-down": 0.6}
SKIN_RGBA = (0.2, 0.1, 0.055, 1.0)  # linear: a darker skin than the default head's
DIRECTIONAL = {"mouthLeft", "mouthRight", "jawLeft", "jawRight"}  # "Left" here is a direction, not a side


def other_naming_style(name: str) -> str:
    """``mouthSmileLeft`` → ``MouthSmile_L``."""
    side = re.search(r"(Left|Right)$", name)
    if side and name not in DIRECTIONAL:
        name = f"{name[:side.start()]}_{side.group(1)[0]}"
    return name[0].upper() + name[1:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "images" / "character_take.png"))
    parser.add_argument("--audio", default=str(REPO / "vendor_models" / "samples" / "hello.wav"))
    parser.add_argument("--resolution", type=int, default=240)
    parser.add_argument("--samples", type=int, default=12)
    args = parser.parse_args()

    import bpy

    from lattice_talk.core.heads import create
    from lattice_talk.core.jobs import run_sync
    from lattice_talk.core.pipeline import GenerateRequest, GenerateSettings
    from lattice_talk.core.pipeline_registry import get_pipeline
    from lattice_talk.scene.character import find_character, write_character_take
    from lattice_talk.scene.head_builder import HEAD_BETAS_PROP, HEAD_ID_PROP, HEAD_SOURCE_PROP, build_head
    from lattice_talk.scene.preview import _read_png, _write_png, front_view
    from lattice_talk.scene.materials import skin_material
    from lattice_talk.scene.render import render_still, setup_front_render

    head = create("default")
    clip = run_sync(get_pipeline("speech"), GenerateRequest(Path(args.audio), head, settings=GenerateSettings(fps=24.0)))

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 24, 1.0
    betas = np.zeros(head.n_shape, np.float32)
    for name, value in IDENTITY.items():
        betas[head.shape_names.index(name)] = value
    mesh = build_head(head, name="Bram", betas=betas, with_armature=False).mesh
    for prop in (HEAD_ID_PROP, HEAD_SOURCE_PROP, HEAD_BETAS_PROP):  # from here on it is just a mesh with shape keys
        del mesh[prop]
    for key in mesh.data.shape_keys.key_blocks[1:]:
        key.name = other_naming_style(key.name)
    mesh.data.materials.append(skin_material("Bram Skin", SKIN_RGBA))
    subdivision = mesh.modifiers.new("Subdivision", "SUBSURF")
    subdivision.levels, subdivision.render_levels = 0, 1
    result = write_character_take(clip, find_character(mesh), scene, "hello")
    assert not result.unmatched_expressions, result.unmatched_expressions
    print(f"take 'hello': {result.curves} curves, frames {result.frame_start}-{result.frame_end}, no manual mapping")

    # Rest, then the three widest mouth openings at least a third of a second apart.
    frames = [0]
    for frame in np.argsort(-clip.jaw[:, 0]):
        if len(frames) == 4:
            break
        if all(abs(int(frame) - f) >= 8 for f in frames):
            frames.append(int(frame))
    setup_front_render(scene, front_view(head, args.resolution), samples=args.samples, denoise=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tiles = []
    for k, frame in enumerate(sorted(frames)):
        scene.frame_set(result.frame_start + frame)
        tiles.append(_read_png(render_still(scene, out.with_name(f"{out.stem}_{k}.png"))))
        out.with_name(f"{out.stem}_{k}.png").unlink()
    _write_png(np.concatenate(tiles, axis=1), out)
    print(f"wrote {out} (frames {sorted(frames)} of {clip.n_frames})")


if __name__ == "__main__":
    main()
