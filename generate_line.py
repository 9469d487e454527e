"""One line of a `generate` batch: the models' identity that the re-run rule compares, the check of an existing
output, and the take made and written in every output format (.npz/.json, .blend, renders). The one-machine batch
(``cli.generate``) and a render farm's workers (``farm.run_line``) both run exactly this."""

from __future__ import annotations

import argparse
from pathlib import Path

from .cli.common import _print_take
from .core import console
from .core.errors import LatticeTalkError


def _model_identity(pipeline, args: argparse.Namespace) -> dict:
    """What a re-run compares about the models: the pipeline, its model folder's digest, and with --video the
    video face model's weights (or the non-learned baseline when none are installed)."""
    from .core.motion.face_models import VIDEO_MODEL_DIR, VIDEO_MODEL_WEIGHTS
    from .core.rerun import file_sha256, folder_sha256

    model_dir = getattr(pipeline, "model_dir", None)
    identity = {"pipeline": pipeline.name, "sha256": folder_sha256(model_dir) if model_dir is not None else None}
    if args.video:
        weights = Path(args.video_model or VIDEO_MODEL_DIR) / VIDEO_MODEL_WEIGHTS
        identity["video_model_sha256"] = file_sha256(weights) if weights.is_file() else "retarget-baseline"
    return identity


def _recorded_run(out: Path) -> dict | None:
    """The run an existing output records; None when it cannot be read or records none."""
    from .core.clip import load_clip
    from .core.rerun import RUN_KEY

    try:
        if out.suffix.lower() == ".blend":
            from .scene.session import recorded_run

            return recorded_run(out)
        return load_clip(out).provenance.get(RUN_KEY)
    except (LatticeTalkError, RuntimeError, ValueError):  # a damaged clip; a file Blender cannot open; bad JSON
        return None


def _generate_one(args: argparse.Namespace, pipeline, head, model: dict, item, progress) -> tuple[str, list[Path]]:
    """One input → its output (and preview), or nothing when the output already records this run.
    Returns the item's status and the files written."""
    from .core.jobs import run_sync
    from .core.pipeline import GenerateRequest, GenerateSettings, clip_warnings
    from .core.rerun import RUN_KEY, run_record, what_changed

    out = Path(item.output)
    render = Path(args.render) if args.render else None
    if render is not None and not render.suffix:
        render = render / f"{out.stem}.mp4"
    blend = out.suffix.lower() == ".blend"
    video = _reference_video(args.video, Path(item.input))
    settings = GenerateSettings(intensity=args.intensity, head_motion=args.head_motion, blinks=not args.no_blinks,
                                fps=args.fps, seed=args.seed, recognize_words=args.recognize_words,
                                video_offset=args.video_offset if video is not None else None)
    take = args.take or out.stem
    inputs = {"audio": Path(item.input), "video": video}
    transcript = _transcript(args.transcript, Path(item.input))

    def this_run() -> dict:
        return run_record(inputs, model, settings.as_dict(), args.head, take, texts={"transcript": transcript})

    run = None
    # A missing input is left to the pipeline, whose check names it.
    if out.exists() and not args.force and all(p is None or p.is_file() for p in inputs.values()):
        progress("checking the existing output", 0.0)
        run = this_run()
        reason = what_changed(_recorded_run(out), run)
        if reason is None:
            if render is not None and (not render.exists() or render.stat().st_mtime < out.stat().st_mtime):
                from .scene.session import open_scene_head

                item.note = "up to date; rendering its preview only"
                return "rendered", [_render(open_scene_head(out), render, progress, 0.0)]
            item.note = "up to date (same inputs, model, settings, head, take and version); kept — --force redoes it"
            return "skipped", []
        item.note = f"made again: {reason}"
    request = GenerateRequest(audio_path=Path(item.input), head=head, video_path=video, settings=settings,
                              video_model=Path(args.video_model) if args.video_model else None, transcript=transcript)
    share = 0.2 if render is not None else 0.95  # of the item's progress; the rest saves (and renders)
    clip = run_sync(pipeline, request, lambda stage, f: progress(stage, share * f))
    for warning in clip_warnings(clip, request.audio_path):
        print(f"warning: {warning}", file=console.stderr())
    run = run or this_run()
    if not blend:
        clip.provenance[RUN_KEY] = run
        clip.save(out)
        return "done", [out.resolve()]
    import bpy

    from .scene.character import write_take_on_target
    from .scene.session import new_head_scene, record_run, save_blend, setup_preview

    progress(f"writing {out.name}", share)
    objects = new_head_scene(head, args.head, args.fps)
    _print_take(write_take_on_target(clip, objects, bpy.context.scene, take, sound_path=request.audio_path))
    setup_preview(objects, render or out.with_suffix(".mp4"))  # F12 / Ctrl+F12 in the .blend give the preview
    record_run(run)
    files = [save_blend(out)]
    if render is not None:
        files.append(_render(objects, render, progress, share))
    return "done", files


def _render(objects, render: Path, progress, start: float) -> Path:
    from .scene.session import render_preview

    def frame_done(done: int, frames: int) -> None:
        progress(f"rendering the preview, frame {done}/{frames}", start + (1.0 - start) * done / frames)

    progress("rendering the preview", start)
    return render_preview(objects, render, progress=frame_done)


def _transcript(given: str | None, audio: Path) -> str | None:
    """``--transcript`` when given (one input), else the text of ``<audio stem>.txt`` beside the audio, if any."""
    if given is not None:
        return given
    beside = audio.with_suffix(".txt")
    if beside.is_file():
        try:
            return beside.read_text(encoding="utf-8").strip() or None
        except (OSError, UnicodeDecodeError) as exc:
            raise LatticeTalkError(f"{beside}: cannot read the transcript ({exc}); save it as UTF-8 text") from exc
    return None


def _reference_video(video: str | None, audio: Path) -> Path | None:
    """``--video``: a file is used as given; a folder gives the video with the audio file's stem (any of
    core.audio.VIDEO_SUFFIXES, any case), or none — that input is then generated from its audio alone."""
    from .core.audio import VIDEO_SUFFIXES

    if not video or not Path(video).is_dir():
        return Path(video) if video else None
    matches = sorted(p for p in Path(video).iterdir() if p.stem == audio.stem and p.suffix.lower() in VIDEO_SUFFIXES)
    return matches[0] if matches else None
