"""``python -m lattice_talk`` — the command line. Subcommands import what they need when they run."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from .core import console
from .core.errors import LatticeTalkError
from .core.paths import DATASETS_DIR

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
SCHEDULER_ENV = "LATTICE_TALK_SCHEDULER"  # the Dask scheduler a batch goes to when --scheduler is not given
EMBEDDING_HELP = ("FLAME's mediapipe_landmark_embedding.npz for a FLAME head (default: the file of that name beside "
                  "the model)")
DEVICE_CHOICES = ("cpu", "cuda")
SPEECH_RECIPE = Path(__file__).resolve().parent / "vendor_models" / "speech" / "recipe.json"


def _cmd_demo(args: argparse.Namespace) -> int:
    """Build the default head in Blender, render neutral + six expressions, save the scene."""
    from .core.heads import create
    from .scene.preview import render_expression_sheet

    head = create(args.head)
    out = Path(args.out)
    png = render_expression_sheet(head, out / "default_head.png", resolution=args.resolution, samples=args.samples,
                                  blend_path=out / "default_head.blend")
    print(f"wrote {out / 'default_head.blend'} and {png}", file=console.stdout())
    return EXIT_OK


def _head_for(args: argparse.Namespace, clip=None):
    """``--head`` with its landmark embedding (``--embedding``, else the file beside the model). With ``clip``:
    refused now, before any work, when the clip must be converted to the head and the head has no embedding."""
    from .core.heads import create, require_landmarks
    from .core.validate import input_file

    if args.embedding:
        input_file(args.embedding, "landmark embedding", "give FLAME's mediapipe_landmark_embedding.npz")
    head = create(args.head, landmark_embedding=args.embedding)
    if clip is None or clip.head_id != head.head_id:
        require_landmarks(head)
    return head


def _print_take(result) -> None:
    """What the one clip → take function reports: conversion and warnings."""
    if result.conversion:
        print(f"take '{result.name}': {result.conversion}", file=console.stdout())
    for warning in result.warnings:
        print(f"warning: {warning}", file=console.stderr())
    if result.unmatched_expressions:
        print(f"warning: {len(result.unmatched_expressions)} channels have no shape key: "
              + ", ".join(result.unmatched_expressions[:8]), file=console.stderr())


def _cmd_apply(args: argparse.Namespace) -> int:
    """An AnimationClip file → a take in a .blend (a new scene with a head, or --scene base.blend)."""
    from .core.audio import check_sound_file
    from .core.clip import load_clip
    from .core.validate import output_path
    from .scene.character import write_take_on_target
    from .scene.session import new_head_scene, open_scene_head, render_preview, save_blend, setup_preview

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


class GenerateJobs:
    """What a ``generate`` run does, checked before any work: its items (input → output), the pipeline (not yet
    loaded), the head, the models' identity for the re-run rule, and where a batch keeps its account."""

    def __init__(self, items, pipeline, head, model: dict, out_dir: Path):
        self.items, self.pipeline, self.head, self.model, self.out_dir = items, pipeline, head, model, out_dir
        self.batch = len(items) > 1
        self.manifest = out_dir / "manifest.json" if self.batch else None


def _generate_jobs(args: argparse.Namespace, local: bool = True) -> GenerateJobs:
    """Every check ``generate`` makes before its first input, and the jobs. ``local``: the models run here (False:
    on farm workers, which each choose their own torch device)."""
    from .core.batch import OUTPUT_SUFFIXES, expand_inputs, plan_outputs
    from .core.device import torch_device
    from .core.pipeline_registry import get_pipeline
    from .core.validate import output_path

    out = output_path(args.out, "--out", OUTPUT_SUFFIXES, folder_allowed=True)
    items = plan_outputs(expand_inputs(args.inputs), out, args.format)
    _check_outputs(args, items)
    if args.video and len(items) > 1 and not Path(args.video).is_dir():
        raise LatticeTalkError(f"{args.video}: several inputs need --video to be a folder of videos named like the audio files")
    if args.transcript is not None and len(items) > 1:
        raise LatticeTalkError("--transcript is the text of one line; for a batch put each line's text in a .txt "
                               "file beside its audio (line.wav → line.txt)")
    if args.render and len(items) > 1 and Path(args.render).suffix:
        raise LatticeTalkError(f"{args.render}: several inputs render several previews; give a folder")
    if args.render and not all(Path(i.output).suffix == ".blend" for i in items):
        raise LatticeTalkError("--render needs .blend outputs (--out take.blend, or --format blend)")
    device = torch_device(args.device, notice=lambda line: print(line, file=console.stderr())) if local else args.device
    # no pipeline → one clear message before any work
    pipeline = get_pipeline(args.pipeline, speech_model=args.speech_model, device=device)
    head = _head_for(args)  # generating always reaches the head through its landmark embedding
    jobs = GenerateJobs(items, pipeline, head, _model_identity(pipeline, args), Path(items[0].output).parent)
    try:
        jobs.out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LatticeTalkError(f"{jobs.out_dir}: cannot create the output folder ({exc.strerror}); choose a folder you "
                               "can write to") from exc
    return jobs


def _cmd_generate(args: argparse.Namespace) -> int:
    """Audio file(s) → take(s): .npz/.json clips without Blender, or .blend scenes; folders and globs batch, on this
    machine or (``--scheduler``) on a Dask cluster. An existing output is kept only when it records this very run
    (core.rerun); otherwise it is made again."""
    from contextlib import ExitStack

    from tqdm import tqdm

    from .core.batch import BatchRecord, run_batch

    scheduler = args.scheduler or os.environ.get(SCHEDULER_ENV) or None
    if scheduler is not None:
        from .farm import check_scheduler  # the farm module imports dask only inside its functions

        scheduler = check_scheduler(scheduler)
    jobs = _generate_jobs(args, local=scheduler is None)
    items = jobs.items
    written: list[Path] = []
    files_of: dict[str, list[Path]] = {}  # output → the files its run wrote, until it is told
    finished = 0  # items told so far, in whatever order they finish
    with ExitStack() as stack:
        log = None
        if jobs.batch:  # one file's story is told on screen; a batch's is kept beside its outputs
            log_file = stack.enter_context(open(jobs.out_dir / "batch.log", "a"))

            def log(line: str) -> None:
                log_file.write(line + "\n")
                log_file.flush()

        bar = stack.enter_context(tqdm(total=len(items), disable=args.quiet, bar_format=PROGRESS_FORMAT, desc="starting",
                                       file=console.stderr()))

        def item_finished(item, files: list[Path], said: tuple[str, str] = ("", "")) -> None:
            """Tell what one finished item wrote and why (``said``: what a farm worker printed, stdout and stderr)."""
            nonlocal finished
            for text, stream in zip(said, (console.stdout(), console.stderr())):
                if text:
                    bar.write(text.rstrip("\n"), file=stream)
            if item.note:
                bar.write(f"{item.output}: {item.note}", file=console.stdout())
            written.extend(files)
            finished += 1
            bar.n = finished
            bar.refresh()

        def work(item) -> str:
            index = items.index(item)

            def progress(stage: str, fraction: float) -> None:
                bar.n = index + min(max(fraction, 0.0), 1.0)
                bar.set_description_str(f"{Path(item.input).name}: {stage}" if jobs.batch else stage)

            status, files_of[item.output] = _generate_one(args, jobs.pipeline, jobs.head, jobs.model, item, progress)
            return status

        record = BatchRecord(items, jobs.manifest, log)
        if scheduler is not None:
            from .farm import run_on_farm

            run_on_farm(scheduler, args, jobs, record, item_finished, bar)
        elif jobs.batch:  # each failure is recorded and the batch goes on
            run_batch(record, work, on_item=lambda item: item_finished(item, files_of.pop(item.output, [])))
        else:  # one file: bad input is the command's error (exit 2), as for checks made before the run
            items[0].status = work(items[0])
            item_finished(items[0], files_of.pop(items[0].output))
        bar.set_description_str("finished")
    failed = [i for i in items if i.status == "failed"]
    labels = {"done": "generated", "rendered": "rendered from an up-to-date .blend", "skipped": "up to date", "failed": "failed"}
    counts = [f"{n} {label}" for status, label in labels.items() if (n := sum(i.status == status for i in items))]
    print(", ".join(counts) + (f"; manifest {jobs.manifest}" if jobs.manifest else ""), file=console.stdout())
    for item in failed:
        print(f"failed: {item.input}: {item.error}", file=console.stderr())
    print("wrote " + ", ".join(str(p) for p in written) if written else "wrote nothing", file=console.stdout())
    return EXIT_FAILED if failed else EXIT_OK


PROGRESS_FORMAT = "{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"
RENDER_SUFFIXES = (".mp4", ".mkv", ".mov", ".png")  # a video with the sound, or numbered PNG frames


def _check_outputs(args: argparse.Namespace, items) -> None:
    """Every file ``generate`` will write is a known kind and none is an input (the audio, video or head files)."""
    from .core.batch import OUTPUT_SUFFIXES
    from .core.validate import output_path

    inputs = [i.input for i in items] + [args.video, args.head, args.embedding]
    for item in items:
        output_path(item.output, "--out", OUTPUT_SUFFIXES, inputs)
    if args.render:
        output_path(args.render, "--render", RENDER_SUFFIXES, inputs, folder_allowed=True)


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
                                fps=args.fps, seed=args.seed)
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


def _cmd_export(args: argparse.Namespace) -> int:
    """A clip → Live Link Face CSV or another clip file (no Blender), or glTF/FBX of a head or character with it."""
    from .core.clip import load_clip
    from .core.validate import output_path

    clip = load_clip(args.clip)
    if args.format in ("gltf", "fbx"):
        from .scene.export import SCENE_FORMATS

        suffixes = SCENE_FORMATS[args.format]
    else:
        suffixes = (".csv",) if args.format == "livelink" else (f".{args.format}",)
    out = output_path(args.out, "--out", suffixes, (args.clip, args.scene, args.head, args.embedding))
    if args.format == "livelink":
        from .core.livelink import write_livelink_csv

        write_livelink_csv(clip, out)
    elif args.format in ("npz", "json"):
        from .core.head_convert import clip_for_head, conversion_summary

        head = _head_for(args, clip)
        clip = clip_for_head(clip, head.head_id, lambda: head)
        summary = conversion_summary(clip)
        if summary:
            print(summary)
        clip.save(out)
    else:
        import bpy

        from .scene.character import open_scene_target, write_take_on_target
        from .scene.export import export_take
        from .scene.session import new_head_scene

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
    from .core.clip import load_clip
    from .core.head_convert import convert_clip
    from .core.heads import create
    from .core.validate import output_path

    clip = load_clip(args.clip)
    output_path(args.out, "--out", (".npz", ".json"), (args.clip, args.source, args.target, args.embedding))
    source = create(args.source, landmark_embedding=args.embedding)
    target = create(args.target, landmark_embedding=args.embedding)
    print(f"wrote {convert_clip(clip, source, target).save(args.out)}")
    return EXIT_OK


def _cmd_data_synth(args: argparse.Namespace) -> int:
    """Synthetic speech + articulation corpus, with a progress bar in seconds of audio."""
    import time

    from tqdm import tqdm

    from .core.data.corpus import synth_corpus

    start = time.perf_counter()
    with tqdm(total=round(args.hours * 3600), unit="s audio", disable=args.quiet) as bar:
        summary = synth_corpus(args.out, args.hours, seed=args.seed, workers=args.workers,
                               languages=tuple(args.languages), progress=lambda seconds: bar.update(round(seconds)),
                               recombine_share=args.recombine, skip=args.skip)
    elapsed = time.perf_counter() - start
    print(json.dumps(summary["hours"]), f"in {elapsed:.0f} s; corpus in {args.out}")
    return EXIT_OK


def _cmd_data_real(args: argparse.Namespace) -> int:
    """One speaker's real talking-face videos (+ GRID word alignments) → training shards in the corpus format."""
    from tqdm import tqdm

    from .core.real_av.shards import build_real_corpus, read_grid_words

    videos = sorted(p for p in Path(args.videos).iterdir() if p.suffix.lower() in (".mpg", ".mp4", ".mov", ".avi"))
    if args.limit:
        videos = videos[:args.limit]
    if not videos:
        raise LatticeTalkError(f"{args.videos}: no videos (.mpg/.mp4/.mov/.avi)")
    alignments = Path(args.alignments)

    def words_of(video: Path) -> list[str]:
        path = alignments / f"{video.stem}.align"
        if not path.is_file():
            raise LatticeTalkError(f"{path}: no word alignment for {video.name}")
        return read_grid_words(path)

    bar = tqdm(total=2 * len(videos), unit="video")

    def progress(stage: str, fraction: float) -> None:
        bar.set_description(stage)
        bar.update(1)

    summary = build_real_corpus(videos, words_of, args.speaker, args.out, args.cache or Path(args.out) / "tracks",
                                heldout_share=args.heldout_share, augmented_copies=args.augmented_copies,
                                progress=progress)
    bar.close()
    return _report_corpus(summary)


def _report_corpus(summary: dict) -> int:
    """A data command's last lines: the corpus's size, and each recording it left out."""
    print(json.dumps({k: summary[k] for k in ("utterances", "hours")}))
    for line in summary["failed"]:
        print(f"left out: {line}", file=sys.stderr)
    return EXIT_OK


def _cmd_data_voices(args: argparse.Namespace) -> int:
    """Real read speech of many speakers (+ its text) → training shards: aligned phones, a teacher model's motion."""
    from tqdm import tqdm

    from .core.real_av.voice_shards import build_voice_corpus, read_line_table
    from .core.speech.pipeline import MODEL_DIR

    lines = read_line_table(args.lines, args.root)[:args.limit or None]
    bar = tqdm(total=len(lines), unit="line")

    def progress(stage: str, fraction: float) -> None:
        bar.set_description(stage)
        bar.update(1)

    summary = build_voice_corpus(lines, args.teacher or MODEL_DIR, args.out, args.tag, heldout_share=args.heldout_share,
                                 augmented_copies=args.augmented_copies, progress=progress)
    bar.close()
    return _report_corpus(summary)


def _cmd_data_mix(args: argparse.Namespace) -> int:
    """Several corpora → one training folder of links (a corpus's training shards as many times as asked)."""
    from .core.data.mix import mix_corpora, parse_part

    parts = ([parse_part(text) for text in args.corpus] + [parse_part(text, heldout=False) for text in args.train_only]
             + [parse_part(f"{text}*0") for text in args.heldout_only])
    summary = mix_corpora(parts, args.out)
    print(json.dumps(summary["hours"]), f"in {args.out}")
    return EXIT_OK


def _cmd_data_plot(args: argparse.Namespace) -> int:
    """Mouth targets (visemes) and one sentence's curves, to check the articulation by eye."""
    from .core.data.plots import plot_visemes
    from .core.data.tts import synthesize
    from .core.data.articulation import articulate
    from .core.heads import create
    from .core.landmark_rig import LandmarkRig
    from .core.metrics import plot_comparison
    from .core.data.corpus import CorpusUtterance, FPS

    head = create("default")
    rig = LandmarkRig(head)
    out = Path(args.out)
    print(f"wrote {plot_visemes(rig, head.expression_names, out / 'visemes.png')}")
    speech = synthesize(args.text, args.engine, args.voice)
    motion = articulate(speech.phonemes, head.expression_names, FPS, speech.audio, speech.sample_rate, seed=args.seed)
    track = CorpusUtterance("plot", speech.audio, speech.sample_rate, speech.phonemes, FPS, head.expression_names,
                            motion.units, motion.jaw, motion.head_rotation).motion(rig)
    png = plot_comparison(track, track, out / "sentence.png", title=f"{args.engine} {args.voice}: “{args.text}”")
    print(f"wrote {png}")
    return EXIT_OK


def _cmd_data_render_videos(args: argparse.Namespace) -> int:
    """Ground-truth videos of the default head (Blender Workbench) with their clips and a manifest; resumable."""
    import time

    from tqdm import tqdm

    from .scene.video_render import render_video_corpus

    start = time.perf_counter()
    with tqdm(desc="videos", unit="video", disable=args.quiet) as bar:
        summary = render_video_corpus(args.out, args.count, seed=args.seed, n_frames=args.frames,
                                      heldout_share=args.heldout_share, relit_share=args.relit_share,
                                      progress=lambda n, entry, seconds: (bar.update(1), bar.set_postfix_str(entry["name"])))
    summary["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(summary))
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

    if args.device != "cpu" and args.name != "speech":
        raise LatticeTalkError(f"--device is for 'bench speech'; 'bench {args.name}' runs no model on a device")
    run_benchmark(args.name, Path(args.json) if args.json else None, args.device)
    return EXIT_OK


def _cmd_eval(args: argparse.Namespace) -> int:
    """Compare a predicted MotionTrack with a reference: print a table, write eval.json and eval.png."""
    import json

    from .core.metrics import evaluate, format_table, plot_comparison, to_json_ready
    from .core.motion_file import load_motion
    from .core.validate import input_file

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


def _cmd_speech_pretrain(args: argparse.Namespace) -> int:
    """Self-supervised pretraining of the small speech encoder (wav2vec 2.0 objective), resumable, with a progress bar."""
    from tqdm import tqdm

    from .core.speech.pretrain import pretrain, small_config

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with tqdm(total=args.steps, unit="step", disable=args.quiet) as bar:
        def progress(step: int, steps: int, entry: dict) -> None:
            bar.update(step - bar.n)
            bar.set_postfix(loss=f"{entry['loss']:.3f}", ppl=f"{entry['perplexity']:.0f}", refresh=False)

        history = pretrain(args.corpus, args.out, args.steps, batch_seconds=args.batch_seconds, seed=args.seed,
                           resume=not args.no_resume, progress=progress, crop_seconds=args.crop_seconds, lr=args.lr,
                           save_every=args.save_every, max_minutes=args.minutes,
                           config=small_config(front_end=args.front_end))  # used only when no run is resumed
    if history:
        last = history[-1]
        print(f"step {last['step']}/{args.steps}: loss {last['loss']:.3f} (contrastive {last['contrastive']:.3f}), "
              f"codevector perplexity {last['perplexity']:.1f}; checkpoint in {args.out}")
    return EXIT_OK


def _cmd_speech_export_encoder(args: argparse.Namespace) -> int:
    """A pretraining checkpoint's encoder as it ships: bare Wav2Vec2Model, fp16 safetensors."""
    from .core.speech.pretrain import export_encoder

    print(f"encoder in {export_encoder(args.checkpoint, args.out)}")
    return EXIT_OK


def _cmd_speech_train(args: argparse.Namespace) -> int:
    """Train the decoder (features → default-head mouth motion) on a corpus, resumable, early stopping."""
    from tqdm import tqdm

    from .core.speech.train import train_decoder

    with tqdm(total=args.epochs, unit="epoch", disable=args.quiet) as bar:
        def progress(epoch: int, train_loss: float, heldout_loss: float) -> None:
            bar.update(epoch + 1 - bar.n)
            bar.set_postfix(train=f"{train_loss:.3f}", heldout=f"{heldout_loss:.3f}", refresh=False)

        history = train_decoder(args.corpus, args.out, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                                seed=args.seed, lr=args.lr, hidden=args.hidden, dilations=tuple(args.dilations),
                                init_from=args.init_from, perturb=not args.no_voice_perturbation, encoder=args.encoder,
                                encoder_states_only=args.encoder_states_only, progress=progress)
    print(f"best held-out loss {history['best']:.4f} at epoch {history['best_epoch']}; decoder in {args.out}")
    if args.calibrate_limit > 0:
        _calibrate(args.out, args.corpus, args.calibrate_limit)
    return EXIT_OK


def _calibrate(model_dir: str, corpus: str, limit: int) -> None:
    """Choose the decoder's seal window on a corpus's held-out split and write it into decoder.json."""
    from .core.heads import create
    from .core.landmark_rig import LandmarkRig
    from .core.speech.features import decoder_features
    from .core.speech.train import calibrate_seal, load_examples
    from .core.speech.model import load_decoder, write_seal

    model, config = load_decoder(model_dir)
    examples = load_examples(corpus, "heldout", decoder_features(config, model_dir), limit=limit)
    seal, rows = calibrate_seal(model, examples, LandmarkRig(create("default")))
    for row in rows:
        print(f"seal {row['from']:.1f}–{row['full']:.1f}: lip error {row['lip_vertex_error_mm']:.3f} mm, "
              f"closure {100 * row['bilabial_closure_rate']:.1f} %")
    write_seal(model_dir, seal, f"{Path(corpus).name} held-out, {rows[0]['utterances']} utterances")
    print(f"seal window {seal[0]:.1f}–{seal[1]:.1f} written to {Path(model_dir) / 'decoder.json'}")


def _cmd_speech_calibrate(args: argparse.Namespace) -> int:
    """Choose a trained decoder's seal window (lowest lip error that keeps closure) on held-out utterances, or write
    one chosen elsewhere (--window)."""
    if args.window is None:
        _calibrate(args.model, args.corpus, args.limit)
        return EXIT_OK
    from .core.speech.model import DECODER_CONFIG, write_seal
    from .core.validate import input_file

    start, full = args.window
    if not 0.0 <= start < full <= 1.0:
        raise LatticeTalkError(f"--window {start} {full}: give probabilities FROM < FULL between 0 and 1")
    input_file(Path(args.model) / DECODER_CONFIG, "decoder config", "give a trained speech model folder")
    write_seal(args.model, (start, full), args.chosen_on)
    print(f"seal window {start:.1f}–{full:.1f} written to {Path(args.model) / DECODER_CONFIG}")
    return EXIT_OK


def _cmd_speech_recipe(args: argparse.Namespace) -> int:
    """The shipped speech model from nothing: every step of its recipe through this CLI, resumable, then the
    result in WORK/model."""
    from .core.speech.recipe import load_recipe, model_folder, plan, run_recipe, ship_model

    recipe = load_recipe(SPEECH_RECIPE)
    data = {name: getattr(args, name) for name in recipe.get("inputs", {})}
    steps = plan(recipe, args.work, args.scale, data, until=args.until)
    if args.dry_run:
        for step in steps:
            print(step.command())
        return EXIT_OK
    log = run_recipe(steps, args.work, args.scale, main)
    print(f"{sum(entry['seconds'] for entry in log['steps'].values()) / 60:.1f} min of steps in all; per step in "
          f"{Path(args.work) / 'recipe_log.json'}")
    if args.until is None:
        print(f"speech model in {ship_model(model_folder(recipe, args.work), Path(args.work) / 'model')}")
    return EXIT_OK


def _cmd_speech_eval(args: argparse.Namespace) -> int:
    """Held-out corpus metrics on the default head, and the real-clip proxy checks."""
    from .core.heads import create
    from .core.landmark_rig import LandmarkRig
    from .core.speech.pipeline import SpeechPipeline
    from .core.speech.proxy import real_clip_checks
    from .core.speech.features import decoder_features
    from .core.speech.train import evaluate, load_examples
    from .core.speech.model import load_decoder, seal_window

    model, config = load_decoder(args.model)
    head = create("default")
    examples = load_examples(args.corpus, "heldout", decoder_features(config, args.model), limit=args.limit)
    report = {"heldout": evaluate(model, examples, LandmarkRig(head), seal_window(config))}
    if args.real:
        clips = sorted(Path(args.real).glob("*.wav"))
        report["real_clips"], generated = real_clip_checks(SpeechPipeline(args.model), clips, head)
        if args.sheet:
            from .scene.preview import render_clip_frames

            shots = [(clip, row[key]) for row, clip in zip(report["real_clips"], generated) for key in ("loudest_frame", "quietest_frame")]
            print(f"wrote {render_clip_frames(head, shots, Path(args.sheet), columns=2 * 4)}")
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return EXIT_OK


def _cmd_speech_eval_real(args: argparse.Namespace) -> int:
    """Speech models against real talking faces no training read (the held-out manifest), loudness beside them."""
    from .core.real_av.evaluate import evaluate_real, format_summary, write_report
    from .core.real_av.manifest import load_manifest

    clips = load_manifest(args.manifest)
    if args.split != "all":
        clips = [c for c in clips if c.split == args.split]
    if args.clips:
        clips = [c for c in clips if any(c.name.startswith(prefix) for prefix in args.clips)]
    from .core.speech.pipeline import MODEL_DIR

    models = {"shipped": MODEL_DIR} if not args.model else {Path(m).name: m for m in args.model}
    result = evaluate_real(clips, args.data, models, cache_dir=args.cache or Path(args.out) / "tracks",
                           progress=lambda stage: print(stage, file=sys.stderr), transcript_mode=args.transcript_mode)
    print(format_summary(result["summary"]))
    print(f"wrote {write_report(result, args.out)}")
    if args.figures:
        from .core.real_av.plots import plot_clips

        for path in plot_clips(result, Path(args.out) / "figures"):
            print(f"wrote {path}")
    return EXIT_OK


def _cmd_video_eval_offset(args: argparse.Namespace) -> int:
    """The A/V offset estimate on real clips with their own sound and with known shifts: right, declined or wrong."""
    from .core.real_av.manifest import load_manifest
    from .core.real_av.offset_eval import evaluate_offsets, format_offsets

    clips = [c for c in load_manifest(args.manifest) if args.split == "all" or c.split == args.split]
    if not args.with_separate_sound:
        clips = [c for c in clips if c.audio is None]
    if not clips:
        raise LatticeTalkError(f"{args.manifest}: no clips with their own sound in split {args.split!r} "
                               "(add --with-separate-sound or choose another --split)")
    result = evaluate_offsets(clips, args.data, args.model, cache_dir=args.cache or Path(args.out).parent / "tracks",
                              progress=lambda stage: print(stage, file=sys.stderr))
    print(format_offsets(result["summary"]))
    print(f"wrote {_write_report(result, args.out)}")
    return EXIT_OK


def _write_report(result: dict, path: str) -> Path:
    """``result`` as indented JSON at ``path`` (its folder made if needed)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return out


def _cmd_video_eval_real(args: argparse.Namespace) -> int:
    """Takes made with real speakers' videos against the tracked speakers: pose, brows, lids, blinks; audio only beside."""
    from .core.real_av.manifest import load_manifest
    from .core.real_av.video_consistency import evaluate_video_consistency, format_consistency

    clips = [c for c in load_manifest(args.manifest) if args.split == "all" or c.split == args.split]
    if args.clips:
        clips = [c for c in clips if any(c.name.startswith(prefix) for prefix in args.clips)]
    if not clips:
        raise LatticeTalkError(f"{args.manifest}: no clips in split {args.split!r}" +
                               (f" starting with {args.clips}" if args.clips else ""))
    models = {"default": None, **{Path(m).name: m for m in args.model or ()}}
    result = evaluate_video_consistency(clips, args.real, models, progress=lambda stage: print(stage, file=sys.stderr))
    print(format_consistency(result["summary"]))
    print(f"wrote {_write_report(result, args.out)}")
    return EXIT_OK


def _cmd_video_track(args: argparse.Namespace) -> int:
    """Track every video of a rendered corpus once and cache its arrays next to it (vNNNNN.track.npz)."""
    from tqdm import tqdm

    from .core.motion.video_train import build_track_cache

    with tqdm(unit="video", disable=args.quiet) as bar:
        stats = build_track_cache(args.corpus, progress=lambda i, n, name: (setattr(bar, "total", n), bar.update(i - bar.n)),
                                  refresh=args.refresh)
    print(json.dumps(stats))
    return EXIT_OK


def _cmd_video_train(args: argparse.Namespace) -> int:
    """Train the learned video face model on a rendered corpus (tracks it first), resumable, early stopping."""
    import torch
    from tqdm import tqdm

    from .core.motion.video_model import VideoModelConfig
    from .core.motion.video_train import LossWeights, build_track_cache, train_video_model

    torch.set_num_threads(args.threads)
    weights = LossWeights() if args.pose_weight is None else LossWeights(rotation_deg=args.pose_weight)
    build_track_cache(args.corpus)
    with tqdm(total=args.epochs, unit="epoch", disable=args.quiet) as bar:
        def progress(epoch: int, losses: dict) -> None:
            bar.update(epoch + 1 - bar.n)
            bar.set_postfix(train=f"{losses['train']:.3f}", val=f"{losses['validation']:.3f}",
                            pose=f"{losses['rotation_deg']:.2f}°", mm=f"{losses['landmark_mm']:.2f}", refresh=False)

        history = train_video_model(args.corpus, args.out, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                                    batch_size=args.batch_size, window=args.window, lr=args.lr, seed=args.seed,
                                    patience=args.patience, config=VideoModelConfig(video_context=args.video_context),
                                    mirror=not args.no_mirror, minutes=args.minutes, init_from=args.init_from,
                                    face_crops=not args.no_face_crops, weights=weights,
                                    splits=("train", "heldout") if args.include_heldout else ("train",),
                                    progress=progress)
    print(f"best validation loss {history['best']:.4f} at epoch {history['best_epoch']} "
          f"({history.get('stopped', 'all epochs')}); model in {args.out}")
    return EXIT_OK


def _cmd_video_eval(args: argparse.Namespace) -> int:
    """Held-out metrics of the learned model (and the non-learned baseline) on a rendered corpus."""
    import torch

    from .core.motion.face_models import RetargetFaceModel
    from .core.motion.video_model import load_face_model
    from .core.motion.video_train import build_track_cache, evaluate_models, format_results

    torch.set_num_threads(args.threads)
    build_track_cache(args.corpus)
    models = {"learned": load_face_model(args.model)}
    if not args.no_baseline:
        models["baseline (retarget)"] = RetargetFaceModel()
    results = evaluate_models(models, args.corpus, centroids_from=args.centroids_from)
    print(format_results(results))
    if not results["centroid_clips"]:
        print(f"no 7-class accuracy: {results['centroids_from']} has no tracked training expression clips for the "
              "class centroids (an all-held-out corpus: add --centroids-from CORPUS)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return EXIT_OK


def _real_clip_options(parser: argparse.ArgumentParser, split: str) -> None:
    """--manifest and --split of the commands that read real held-out clips."""
    parser.add_argument("--manifest", default=str(DATASETS_DIR / "real_speech_heldout.json"),
                        help="clip manifest (default: the held-out set in datasets/)")
    parser.add_argument("--split", choices=("dev", "test", "all"), default=split,
                        help=f"dev: the clips choices may read; test: the clips read once for published figures "
                             f"(default: {split})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lattice_talk", description="LatticeTalk: speech → editable FLAME face animation")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

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

    gen = sub.add_parser("generate", help="speech → take: one file, a folder or a glob (batch with manifest)")
    gen.add_argument("inputs", nargs="+", help="audio files, folders or globs")
    gen.add_argument("--out", required=True, help="output file (.npz, .json, .blend) or, for several inputs, a folder")
    gen.add_argument("--format", choices=("npz", "json", "blend"), default="npz", help="output type in batch mode")
    gen.add_argument("--video", default=None, help="reference video of the speaker (upper face and head pose); for "
                     "several inputs a folder: each audio file uses the video with its name there, if any")
    gen.add_argument("--video-model", default=None, help="video face model folder for --video, e.g. the opt-in learned "
                     "vendor_models/video/meshconv (default: the installed one, else the retarget baseline)")
    gen.add_argument("--head", default="default", help="'default' or a FLAME .pkl/.npz")
    gen.add_argument("--embedding", default=None, help=EMBEDDING_HELP)
    gen.add_argument("--device", choices=DEVICE_CHOICES, default="cpu",
                     help="where the speech and video models run: cpu, or cuda (falls back to the CPU with a notice "
                          "where CUDA is unavailable)")
    gen.add_argument("--pipeline", default=None, help="installed pipeline to use (default: the speech model)")
    gen.add_argument("--speech-model", default=None, help="speech model folder made by 'speech train' (default: the "
                                                          "shipped vendor_models/speech)")
    gen.add_argument("--transcript", default=None,
                     help="the line's words (English): forced alignment times the p/b/m closures; in a batch, a "
                     "line.txt beside line.wav does the same (needs the 'align' extra)")
    gen.add_argument("--take", default=None, help="take name (default: the output file's name)")
    gen.add_argument("--fps", type=float, default=30.0, help="frames per second of the take (default: 30)")
    gen.add_argument("--seed", type=int, default=0, help="seed of the head motion and blinks (default: 0)")
    gen.add_argument("--intensity", type=float, default=1.0,
                     help="scale of the mouth motion, 0-3 (0: still, 1: as predicted; default: 1)")
    gen.add_argument("--head-motion", type=float, default=1.0,
                     help="scale of the head motion, 0-3 (0: still, 1: as predicted; default: 1)")
    gen.add_argument("--no-blinks", action="store_true", help="no blinks")
    gen.add_argument("--force", action="store_true", help="make every output again, even one that is up to date "
                     "(by default an output is kept only when it records the same inputs, models, settings, head, "
                     "take name and LatticeTalk version)")
    gen.add_argument("--render", default=None, help="also render a preview video per .blend (a file, or a folder for "
                     "several inputs); an up-to-date .blend is only rendered")
    gen.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="run the batch on a Dask cluster: tcp://HOST:8786 or tls://HOST:8786 (its workers: 'dask worker "
                          "ADDRESS --nthreads 1 --preload lattice_talk.farm'), or local[:N] for N worker processes on this "
                          f"machine (default: ${SCHEDULER_ENV}, else this process; README 'Render farm')")
    gen.add_argument("--quiet", action="store_true", help="no progress bar")
    gen.add_argument("--verbose", action="store_true", help="also show what Blender, MediaPipe and TensorFlow Lite print")
    gen.set_defaults(func=_cmd_generate)

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

    data = sub.add_parser("data", help="synthetic training data: corpus generation and plots")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    synth = data_sub.add_parser("synth", help="speak sentences with many voices and write speech + motion shards")
    synth.add_argument("--hours", type=float, required=True, help="hours of speech to synthesize")
    synth.add_argument("--out", required=True, help="corpus folder (created)")
    synth.add_argument("--seed", type=int, default=0, help="seed of sentences, voices and rates (default: 0)")
    synth.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1), help="parallel synthesis processes (default: every CPU)")
    synth.add_argument("--languages", nargs="+", default=["en"], help="espeak-ng language codes (default: en)")
    synth.add_argument("--recombine", type=float, default=0.5,
                       help="share of training utterances that speak training words in new orders (0 = sentences only)")
    synth.add_argument("--skip", type=int, default=0,
                       help="start this many utterances into the seed's stream (extend a corpus: its utterance total)")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=_cmd_data_synth)
    real_data = data_sub.add_parser("real", help="one speaker's real talking-face videos + word alignments → training "
                                    "shards (targets from the tracked face; reads a local folder, downloads nothing)")
    real_data.add_argument("--videos", required=True, help="folder of one speaker's videos with sound (e.g. GRID s1 .mpg)")
    real_data.add_argument("--alignments", required=True, help="folder of GRID-style NAME.align word timings")
    real_data.add_argument("--speaker", required=True, help="speaker id (held-out manifests must not contain it)")
    real_data.add_argument("--out", required=True, help="corpus folder to write (shards + corpus.json)")
    real_data.add_argument("--cache", default=None, help="folder for face tracks (default: OUT/tracks)")
    real_data.add_argument("--heldout-share", type=float, default=0.05, help="videos kept for early stopping (default 0.05)")
    real_data.add_argument("--augmented-copies", type=int, default=0,
                           help="also write each training sentence N more times as other rooms and microphones "
                                "would record it (reverb, band limits, noise, gain; default 0)")
    real_data.add_argument("--limit", type=int, default=None, help="only the first N videos (smoke tests)")
    real_data.set_defaults(func=_cmd_data_real)
    voices = data_sub.add_parser("voices", help="real read speech of many speakers + its text → training shards (phones "
                                 "by forced alignment, motion from a teacher model; reads a local folder, downloads nothing)")
    voices.add_argument("--lines", default=str(DATASETS_DIR / "training_voices.tsv"),
                        help="tab-separated table: audio<TAB>text[<TAB>speaker[<TAB>sha256<TAB>source ...]] per line, "
                        "'#' lines are comments (speaker: the audio's folder name when left out; a sha256 is checked "
                        "before anything is written; default: datasets/training_voices.tsv, the shipped model's "
                        "training voices)")
    voices.add_argument("--root", default=None, help="folder the audio paths are relative to (default: the table's "
                        "folder; for datasets/training_voices.tsv: the folder of cloned OWNER+NAME repositories)")
    voices.add_argument("--teacher", default=None, help="speech model whose raw motion becomes the targets "
                        "(default: the shipped model)")
    voices.add_argument("--tag", required=True, help="name part of the shards (e.g. the source: arctic, librispeech)")
    voices.add_argument("--out", required=True, help="corpus folder to write (shards + corpus.json)")
    voices.add_argument("--heldout-share", type=float, default=0.05, help="lines kept for early stopping (default 0.05)")
    voices.add_argument("--augmented-copies", type=int, default=0,
                        help="also write each training line N more times as other rooms and microphones would record it")
    voices.add_argument("--limit", type=int, default=None, help="only the first N lines (smoke tests)")
    voices.set_defaults(func=_cmd_data_voices)
    mix = data_sub.add_parser("mix", help="several corpora → one training folder (links, nothing copied)")
    mix.add_argument("--corpus", nargs="*", default=[], metavar="DIR[*N]",
                     help="corpus folders; DIR*N links its training shards N times (default 1); their held-out shards "
                     "join the early-stopping split")
    mix.add_argument("--train-only", nargs="*", default=[], metavar="DIR[*N]",
                     help="corpora whose training shards only are linked (e.g. one whose held-out split is a test set)")
    mix.add_argument("--heldout-only", nargs="*", default=[], metavar="DIR",
                     help="corpora whose held-out shards only join the early-stopping split")
    mix.add_argument("--out", required=True, help="folder to write (new, or an earlier mix, which is replaced)")
    mix.set_defaults(func=_cmd_data_mix)
    plot = data_sub.add_parser("plot", help="draw the mouth targets and one sentence's curves")
    plot.add_argument("--out", default="out/data_plots", help="folder for visemes.png and sentence.png (default: out/data_plots)")
    plot.add_argument("--text", default="Bob brought my mother a maple pie before the bumpy bus ride.", help="the sentence to speak")
    plot.add_argument("--engine", default="espeak-ng", help="speech synthesizer: espeak-ng, festival or flite (default: espeak-ng)")
    plot.add_argument("--voice", default="en-us", help="the synthesizer's voice (default: en-us)")
    plot.add_argument("--seed", type=int, default=0, help="seed of the articulation's variation (default: 0)")
    plot.set_defaults(func=_cmd_data_plot)
    videos = data_sub.add_parser("render-videos", help="render ground-truth videos of the default head (clip + manifest; resumable)")
    videos.add_argument("--count", type=int, required=True, help="corpus entries (some also get a relit video)")
    videos.add_argument("--out", required=True, help="corpus folder (resumed if it holds one)")
    videos.add_argument("--seed", type=int, default=0, help="seed of the expressions, head motion and lighting (default: 0)")
    videos.add_argument("--frames", type=int, default=60, help="frames per clip at 30 fps (default: 60)")
    videos.add_argument("--heldout-share", type=float, default=0.2, help="share of entries held out for evaluation (default: 0.2)")
    videos.add_argument("--relit-share", type=float, default=0.25, help="share of entries rendered again under another lighting")
    videos.add_argument("--quiet", action="store_true", help="no progress bar")
    videos.set_defaults(func=_cmd_data_render_videos)

    speech = sub.add_parser("speech", help="speech model: encoder pretraining, decoder training, evaluation")
    speech_sub = speech.add_subparsers(dest="speech_command", required=True, metavar="SPEECH_COMMAND")
    pre = speech_sub.add_parser("pretrain", help="pretrain the small wav2vec 2.0 encoder on a corpus (resumes from --out)")
    pre.add_argument("--corpus", required=True, help="corpus folder from 'data synth'")
    pre.add_argument("--out", required=True, help="checkpoint folder (resumed if it holds one)")
    pre.add_argument("--steps", type=int, required=True, help="length of the whole run (sets the schedules)")
    pre.add_argument("--batch-seconds", type=float, default=32.0, help="seconds of audio per batch (default: 32)")
    pre.add_argument("--crop-seconds", type=float, default=4.0, help="length of each crop (default: 4)")
    pre.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (default: 5e-4)")
    pre.add_argument("--seed", type=int, default=0, help="seed of the crops, masks and initial weights (default: 0)")
    pre.add_argument("--save-every", type=int, default=200, help="checkpoint every N steps (default: 200)")
    pre.add_argument("--minutes", type=float, default=None, help="stop after M minutes and checkpoint (resume later)")
    pre.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    pre.add_argument("--no-resume", action="store_true", help="start over even if --out holds a checkpoint")
    pre.add_argument("--quiet", action="store_true", help="no progress bar")
    pre.add_argument("--front-end", choices=("conv", "log_mel"), default="log_mel",
                     help="feature front end of a new run: learned convolutions or a fixed log-mel filterbank (default)")
    pre.set_defaults(func=_cmd_speech_pretrain)
    export = speech_sub.add_parser("export-encoder", help="a pretraining checkpoint's encoder as it ships (fp16, no "
                                                          "quantizer or optimizer state)")
    export.add_argument("--checkpoint", required=True, help="folder written by 'speech pretrain'")
    export.add_argument("--out", required=True, help="new folder, e.g. inside the decoder's folder: models/speech/encoder")
    export.set_defaults(func=_cmd_speech_export_encoder)
    train = speech_sub.add_parser("train", help="train the decoder on a corpus (resumes from --out)")
    train.add_argument("--corpus", required=True, help="corpus folder from 'data synth'")
    train.add_argument("--out", required=True, help="decoder folder (resumed if it holds a run)")
    train.add_argument("--epochs", type=int, default=30, help="most epochs (default: 30; stops early without held-out gain)")
    train.add_argument("--steps-per-epoch", type=int, default=150, help="training steps per epoch (default: 150)")
    train.add_argument("--seed", type=int, default=0, help="seed of the batches and initial weights (default: 0)")
    train.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: 2e-3)")
    train.add_argument("--hidden", type=int, default=160, help="decoder width (ignored with --init-from)")
    train.add_argument("--dilations", type=int, nargs="+", default=[1, 2, 4, 8, 1, 2],
                       help="one residual block per dilation (ignored with --init-from)")
    train.add_argument("--init-from", default=None, help="trained decoder folder to fine-tune")
    train.add_argument("--no-voice-perturbation", action="store_true", help="train on the features as they are")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--encoder", default=None,
                       help="SSL encoder folder (from 'speech pretrain' or a transformers checkpoint): its hidden states "
                            "join the log-mel bands as features")
    train.add_argument("--encoder-states-only", action="store_true",
                       help="with --encoder: the encoder's hidden states replace the log-mel bands")
    train.add_argument("--calibrate-limit", type=int, default=200,
                       help="choose the seal window on this many held-out utterances after training (0: keep the default)")
    train.set_defaults(func=_cmd_speech_train)
    cal = speech_sub.add_parser("calibrate", help="choose a decoder's seal window on a corpus's held-out utterances")
    cal.add_argument("--model", required=True, help="decoder folder (decoder.json is updated)")
    seal_source = cal.add_mutually_exclusive_group(required=True)
    seal_source.add_argument("--corpus", default=None, help="a corpus whose held-out split is NOT the one you report on")
    seal_source.add_argument("--window", type=float, nargs=2, metavar=("FROM", "FULL"), default=None,
                             help="write this window instead of choosing one: a choice made elsewhere, e.g. on real "
                             "speech (say where with --chosen-on)")
    cal.add_argument("--chosen-on", default="given by hand (speech calibrate --window)",
                     help="with --window: what the window was chosen on, kept in decoder.json")
    cal.add_argument("--limit", type=int, default=200, help="at most this many held-out utterances (default: 200)")
    cal.set_defaults(func=_cmd_speech_calibrate)
    recipe = speech_sub.add_parser("recipe", help="rebuild the shipped speech model from nothing: corpora, mixes, "
                                   "pretraining, training, calibration (resumable; the model card's Rebuild section)")
    recipe.add_argument("--work", required=True, help="folder for the corpora, checkpoints, recipe_log.json and the "
                        "resulting model (WORK/model); run again to resume")
    recipe.add_argument("--scale", choices=("full", "toy"), default="full",
                        help="full: the model card's commands (hours on 2 cores); toy: the same steps shrunk to about "
                        "a minute (a smoke test)")
    for name, spec in json.loads(SPEECH_RECIPE.read_text()).get("inputs", {}).items():  # real data kept locally
        recipe.add_argument(spec["option"], dest=name, metavar=spec.get("metavar", "DIR"), default=None,
                            help=f"{spec['help']} (where to get it: {spec['card']})")
    recipe.add_argument("--until", default=None, metavar="STEP", help="stop after this step (a run prints each step's name; an unknown "
                        "name lists them all)")
    recipe.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    recipe.set_defaults(func=_cmd_speech_recipe)

    ev = speech_sub.add_parser("eval", help="held-out metrics on the default head (+ proxy checks on real clips)")
    ev.add_argument("--model", required=True, help="decoder folder")
    ev.add_argument("--corpus", required=True, help="corpus folder whose held-out split is scored")
    ev.add_argument("--limit", type=int, default=None, help="at most this many held-out utterances")
    ev.add_argument("--real", default=None, help="folder of real speech clips (*.wav) for the proxy checks")
    ev.add_argument("--json", default=None, help="also write the report here")
    ev.add_argument("--sheet", default=None, help="PNG contact sheet: each real clip at its loudest and quietest frame")
    ev.set_defaults(func=_cmd_speech_eval)
    real = speech_sub.add_parser("eval-real", help="lip sync against real talking faces (held-out manifest), with the "
                                 "loudness envelope as a baseline")
    real.add_argument("--data", required=True, help="folder holding the manifest's files (see datasets/README.md)")
    _real_clip_options(real, split="all")
    real.add_argument("--model", action="append", default=None,
                      help="speech model folder; repeat to compare several (default: the shipped model)")
    real.add_argument("--clips", nargs="*", default=None, help="only clips whose names start with these")
    real.add_argument("--out", default="reports/real_speech", help="folder for real_speech.json, tracks and figures")
    real.add_argument("--cache", default=None, help="folder for tracked lips (default: OUT/tracks)")
    real.add_argument("--figures", action="store_true", help="draw real vs predicted vs loudness per clip (PNG)")
    real.add_argument("--transcript-mode", action="store_true",
                      help="also score each model given the clips' transcripts (generate --transcript)")
    real.set_defaults(func=_cmd_speech_eval_real)

    video = sub.add_parser("video", help="learned video face model: tracking cache, training, evaluation")
    video_sub = video.add_subparsers(dest="video_command", required=True, metavar="VIDEO_COMMAND")
    vtrack = video_sub.add_parser("track", help="track a rendered corpus's videos once and cache the arrays")
    vtrack.add_argument("--corpus", required=True, help="folder from 'data render-videos'")
    vtrack.add_argument("--refresh", action="store_true", help="track again even where a cache exists")
    vtrack.add_argument("--quiet", action="store_true", help="no progress bar")
    vtrack.set_defaults(func=_cmd_video_track)
    vtrain = video_sub.add_parser("train", help="train on a rendered corpus (resumes from --out)")
    vtrain.add_argument("--corpus", required=True, help="folder from 'data render-videos'")
    vtrain.add_argument("--out", required=True, help="model/checkpoint folder (resumed if it holds a run)")
    vtrain.add_argument("--epochs", type=int, default=40, help="most epochs (default: 40; stops early without validation gain)")
    vtrain.add_argument("--steps-per-epoch", type=int, default=60, help="training steps per epoch (default: 60)")
    vtrain.add_argument("--batch-size", type=int, default=8, help="windows per step (default: 8)")
    vtrain.add_argument("--window", type=int, default=24, help="frames per training window (default: 24)")
    vtrain.add_argument("--video-context", action="store_true", help="add a whole-clip context vector to every frame")
    vtrain.add_argument("--no-mirror", action="store_true", help="no left-right mirror augmentation")
    vtrain.add_argument("--no-face-crops", action="store_true",
                        help="read the key points only, not the tracker's face crops (the pose's image cue)")
    vtrain.add_argument("--pose-weight", type=float, default=None,
                        help="loss weight per degree of head-pose error (default: 0.05, LossWeights.rotation_deg)")
    vtrain.add_argument("--include-heldout", action="store_true",
                        help="train on the held-out entries too (a final model whose test numbers come from another "
                             "corpus, rendered with --heldout-share 1)")
    vtrain.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: 2e-3)")
    vtrain.add_argument("--patience", type=int, default=8, help="epochs without validation gain before stopping")
    vtrain.add_argument("--init-from", default=None, metavar="MODEL_DIR",
                        help="fine-tune this model (its architecture and weights) instead of starting from scratch")
    vtrain.add_argument("--seed", type=int, default=0, help="seed of the windows and initial weights (default: 0)")
    vtrain.add_argument("--minutes", type=float, default=None, help="stop after M minutes, checkpointed (run again to resume)")
    vtrain.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    vtrain.add_argument("--quiet", action="store_true", help="no progress bar")
    vtrain.set_defaults(func=_cmd_video_train)
    veval = video_sub.add_parser("eval", help="held-out metrics (pose, units, landmarks, 7 classes, lighting) vs the baseline")
    veval.add_argument("--model", required=True, help="model folder (video_model.safetensors + video_model.json)")
    veval.add_argument("--corpus", required=True, help="corpus folder from 'data render-videos' whose held-out entries are scored")
    veval.add_argument("--json", default=None, help="also write the results here")
    veval.add_argument("--centroids-from", default=None, metavar="CORPUS",
                       help="take the 7-class centroids from this corpus's training clips (for a corpus rendered with "
                            "--heldout-share 1; default: --corpus)")
    veval.add_argument("--no-baseline", action="store_true", help="skip the non-learned retarget baseline (slow)")
    veval.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    veval.set_defaults(func=_cmd_video_eval)

    vreal = video_sub.add_parser("eval-real", help="takes made with real speakers' videos against the tracked speakers "
                                 "(pose, brows, lids, blinks), the audio-only take as the floor")
    vreal.add_argument("--real", required=True, help="folder holding the manifest's files (see datasets/README.md)")
    _real_clip_options(vreal, split="test")
    vreal.add_argument("--clips", nargs="*", default=None, help="only clips whose names start with these")
    vreal.add_argument("--model", action="append", default=None,
                       help="a video model folder to compare with the default (repeat for several)")
    vreal.add_argument("--out", default="reports/video_real/video_real.json", help="JSON report to write")
    vreal.set_defaults(func=_cmd_video_eval_real)
    voff = video_sub.add_parser("eval-offset", help="the audio/video offset estimate on real clips: their own sound "
                                "and known shifts (±3, ±7 frames)")
    voff.add_argument("--data", required=True, help="folder holding the manifest's files (see datasets/README.md)")
    _real_clip_options(voff, split="all")
    voff.add_argument("--with-separate-sound", action="store_true",
                      help="also clips whose sound is a separate file (their sync is not known to be exact)")
    voff.add_argument("--model", default=None, help="speech model folder (default: the shipped model)")
    voff.add_argument("--out", default="reports/av_offset/av_offset.json", help="JSON report to write")
    voff.add_argument("--cache", default=None, help="folder for tracked mouths (default: beside --out, tracks/)")
    voff.set_defaults(func=_cmd_video_eval_offset)

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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with console.third_party_output_silenced(active=not getattr(args, "verbose", True)):  # commands that run Blender
            return args.func(args)
    except LatticeTalkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_BAD_INPUT)
