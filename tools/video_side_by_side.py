"""docs/images/video_side_by_side.png: frames of a reference video above the default head animated from the
same clip (its own sound track as the audio, the video as the reference) — the README's *Reference video* and
*Real speech* pictures.

    python tools/video_side_by_side.py --video clip.mp4 [--frames 10 45 81 111 150] [--out docs/images/...]

Runs the installed speech pipeline (vendor_models/speech) with the video, writes the take on the default head
with the add-on's own take writer, renders the chosen frames in Cycles (scene.render's front view) and tiles
them with the video's frames under a 256-colour palette (the PNG stays small). Needs bpy, torch, the video extra
and Pillow; not shipped with the add-on.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TILE = 192


def generate(video: Path):
    from lattice_talk.core.heads import create
    from lattice_talk.core.jobs import run_sync
    from lattice_talk.core.pipeline import GenerateRequest, GenerateSettings
    from lattice_talk.core.pipeline_registry import get_pipeline
    from lattice_talk.core.video.decode import open_video

    cap, info = open_video(video)
    cap.release()
    start = time.perf_counter()
    request = GenerateRequest(audio_path=video, head=create("default"), video_path=video,
                              settings=GenerateSettings(fps=info.fps or 25.0))  # one take frame per video frame
    clip = run_sync(get_pipeline("speech"), request)
    return clip, time.perf_counter() - start


def video_frames(video: Path, frames: list[int]) -> list[np.ndarray]:
    import cv2

    cap = cv2.VideoCapture(str(video))
    out, index = {}, 0
    while len(out) < len(frames):
        ok, frame = cap.read()
        if not ok:
            raise SystemExit(f"{video}: fewer than {max(frames) + 1} frames")
        if index in frames:
            out[index] = cv2.resize(frame, (TILE, TILE), interpolation=cv2.INTER_AREA)[:, :, ::-1]
        index += 1
    cap.release()
    return [out[f] for f in frames]


def render_heads(clip, frames: list[int], folder: Path) -> list[np.ndarray]:
    import bpy
    from PIL import Image

    from lattice_talk.core.heads import create
    from lattice_talk.scene.preview import front_view
    from lattice_talk.scene.parts import assign_head_materials
    from lattice_talk.scene.render import render_still, setup_front_render
    from lattice_talk.scene.session import new_head_scene
    from lattice_talk.scene.character import write_take_on_target

    head = create("default")
    objects = new_head_scene(head, "default", clip.fps)
    scene = bpy.context.scene
    write_take_on_target(clip, objects, scene, "reference")
    assign_head_materials(objects.mesh, head)
    setup_front_render(scene, front_view(head, TILE), samples=16, denoise=True)
    tiles = []
    for frame in frames:
        scene.frame_set(clip.start_frame + frame)
        path = render_still(scene, folder / f"head_{frame}.png")
        tiles.append(np.asarray(Image.open(path).convert("RGB")))
    return tiles


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, required=True, help="a talking-head video with its own sound")
    parser.add_argument("--frames", type=int, nargs="+", default=[10, 45, 81, 111, 150])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "video_side_by_side.png")
    args = parser.parse_args(argv)
    clip, seconds = generate(args.video)
    info = clip.provenance["video"]
    print(f"generated {clip.n_frames} frames in {seconds:.1f} s; video: " + json.dumps(
        {k: info[k] for k in ("model", "offset_frames", "offset_correlation", "fused_share")}))
    shift = int(round(info["offset_seconds"] * info["offset_fps"]))  # video frame = take frame + offset (same fps)
    with tempfile.TemporaryDirectory() as tmp:
        heads = render_heads(clip, args.frames, Path(tmp))
    photos = video_frames(args.video, [f + shift for f in args.frames])
    gap = np.full((TILE, 4, 3), 255, np.uint8)
    row = lambda tiles: np.concatenate([x for t in tiles for x in (t, gap)][:-1], axis=1)  # noqa: E731
    sheet = np.concatenate([row(photos), np.full((4, row(photos).shape[1], 3), 255, np.uint8), row(heads)], axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).quantize(256, dither=Image.Dither.NONE).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
