"""``generate``: audio file(s) → take(s), on this machine or on a Dask cluster (one line: generate_line, which farm.py
also runs on its workers)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..core import console
from ..core.errors import LatticeTalkError
from .common import (DEVICE_CHOICES, EMBEDDING_HELP, EXIT_FAILED, EXIT_OK, PROGRESS_FORMAT, RENDER_SUFFIXES,
                     SCHEDULER_ENV, _head_for)
from ..generate_line import _generate_one, _model_identity


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``generate`` command."""
    gen = sub.add_parser("generate", help="speech → take: one file, a folder or a glob (batch with manifest)")
    gen.add_argument("inputs", nargs="+", help="audio files, folders or globs")
    gen.add_argument("--out", required=True, help="output file (.npz, .json, .blend) or, for several inputs, a folder")
    gen.add_argument("--format", choices=("npz", "json", "blend"), default="npz", help="output type in batch mode")
    gen.add_argument("--video", default=None, help="reference video of the speaker (upper face and head pose); for "
                     "several inputs a folder: each audio file uses the video with its name there, if any")
    gen.add_argument("--video-model", default=None, help="video face model folder for --video, e.g. the opt-in learned "
                     "vendor_models/video/meshconv (default: the installed one, else the retarget baseline)")
    gen.add_argument("--video-offset", type=float, default=None, metavar="SECONDS",
                     help="how late the reference video is against the sound, in seconds (negative: early); default: "
                     "estimated from the lips, 0 where the estimate is unsure (the take's provenance says which)")
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
    gen.add_argument("--recognize-words", action="store_true",
                     help="lines without a transcript: recognise their words to time the p/b/m closures (English; "
                     "needs the 'align' extra; ~0.25-0.6 s more per second of speech)")
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
    from ..core.batch import OUTPUT_SUFFIXES, expand_inputs, plan_outputs
    from ..core.device import torch_device
    from ..core.pipeline_registry import get_pipeline
    from ..core.pipeline import MAX_VIDEO_OFFSET_SECONDS
    from ..core.validate import number, output_path

    out = output_path(args.out, "--out", OUTPUT_SUFFIXES, folder_allowed=True)
    items = plan_outputs(expand_inputs(args.inputs), out, args.format)
    _check_outputs(args, items)
    if args.video and len(items) > 1 and not Path(args.video).is_dir():
        raise LatticeTalkError(f"{args.video}: several inputs need --video to be a folder of videos named like the audio files")
    if args.video_offset is not None:
        if not args.video:
            raise LatticeTalkError(f"--video-offset {args.video_offset:g}: it places a reference video; give one with "
                                   "--video, or leave the offset out")
        number(args.video_offset, "--video-offset", -MAX_VIDEO_OFFSET_SECONDS, MAX_VIDEO_OFFSET_SECONDS,
               f"give seconds within ±{MAX_VIDEO_OFFSET_SECONDS:g}, or leave it to the estimate")
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

    from ..core.batch import BatchRecord, run_batch

    scheduler = _scheduler(args)
    jobs = _generate_jobs(args, local=scheduler is None)
    items = jobs.items
    written: list[Path] = []
    files_of: dict[str, list[Path]] = {}  # output → the files its run wrote, until it is told
    finished = 0  # items told so far, in whatever order they finish
    with ExitStack() as stack:
        log = _batch_log(stack, jobs)
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
            from ..farm import run_on_farm

            run_on_farm(scheduler, args, jobs, record, item_finished, bar)
        elif jobs.batch:  # each failure is recorded and the batch goes on
            run_batch(record, work, on_item=lambda item: item_finished(item, files_of.pop(item.output, [])))
        else:  # one file: bad input is the command's error (exit 2), as for checks made before the run
            items[0].status = work(items[0])
            item_finished(items[0], files_of.pop(items[0].output))
        bar.set_description_str("finished")
    return _report(jobs, written)


def _scheduler(args: argparse.Namespace) -> str | None:
    """The Dask scheduler the batch goes to (``--scheduler``, else $LATTICE_TALK_SCHEDULER), checked; None: this
    process."""
    scheduler = args.scheduler or os.environ.get(SCHEDULER_ENV) or None
    if scheduler is not None:
        from ..farm import check_scheduler  # the farm module imports dask only inside its functions

        scheduler = check_scheduler(scheduler)
    return scheduler


def _batch_log(stack, jobs: GenerateJobs):
    """A batch's log line writer (batch.log beside its outputs, closed with ``stack``); None for one file, whose
    story is told on screen."""
    if not jobs.batch:
        return None
    log_file = stack.enter_context(open(jobs.out_dir / "batch.log", "a"))

    def log(line: str) -> None:
        log_file.write(line + "\n")
        log_file.flush()

    return log


def _report(jobs: GenerateJobs, written: list[Path]) -> int:
    """``generate``'s last lines: how many items each status holds, each failure, the files written; the exit code."""
    items = jobs.items
    failed = [i for i in items if i.status == "failed"]
    labels = {"done": "generated", "rendered": "rendered from an up-to-date .blend", "skipped": "up to date", "failed": "failed"}
    counts = [f"{n} {label}" for status, label in labels.items() if (n := sum(i.status == status for i in items))]
    print(", ".join(counts) + (f"; manifest {jobs.manifest}" if jobs.manifest else ""), file=console.stdout())
    for item in failed:
        print(f"failed: {item.input}: {item.error}", file=console.stderr())
    print("wrote " + ", ".join(str(p) for p in written) if written else "wrote nothing", file=console.stdout())
    return EXIT_FAILED if failed else EXIT_OK


def _check_outputs(args: argparse.Namespace, items) -> None:
    """Every file ``generate`` will write is a known kind and none is an input (the audio, video or head files)."""
    from ..core.batch import OUTPUT_SUFFIXES
    from ..core.validate import output_path

    inputs = [i.input for i in items] + [args.video, args.head, args.embedding]
    for item in items:
        output_path(item.output, "--out", OUTPUT_SUFFIXES, inputs)
    if args.render:
        output_path(args.render, "--render", RENDER_SUFFIXES, inputs, folder_allowed=True)
