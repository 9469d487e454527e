"""Benchmarks: ``python -m lattice_talk bench NAME`` prints a table and writes JSON.

Speed targets live here, never in unit tests. Ratios are measured side by side in one run."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .audio_fuzz import bench_fuzz
from .core.errors import LatticeTalkError

# Real talking-face clips shipped with the tests (GRID speaker s1, CC BY 4.0): present in a clone, not in an install.
REAL_CLIPS_DIR = Path(__file__).resolve().parent / "tests" / "data" / "grid_s1"


def _best_of(fn: Callable[[], object], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_head() -> list[dict]:
    """Default-head load time (fresh process and warm) and LBS cost/agreement, numpy vs torch."""
    from .core.heads import create

    rows = []
    code = ("import time; t=time.perf_counter(); from lattice_talk.core.heads import create; create(); "
            "print(time.perf_counter()-t)")
    fresh = [float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout) for _ in range(3)]
    rows.append({"metric": "default head load, fresh process (imports + read)", "value": min(fresh), "unit": "s", "target": "< 0.2"})
    rows.append({"metric": "default head load, warm", "value": _best_of(create), "unit": "s", "target": "< 0.2"})

    head = create()
    rng = np.random.default_rng(0)
    batch = 100
    params = {
        "betas": rng.normal(0, 0.3, (batch, head.n_shape)).astype(np.float32),
        "expression": rng.uniform(0, 1, (batch, head.n_expression)).astype(np.float32),
        "pose": rng.normal(0, 0.2, (batch, 5, 3)).astype(np.float32),
        "translation": rng.normal(0, 0.05, (batch, 3)).astype(np.float32),
    }
    result_np = head.forward(**params)
    rows.append({"metric": f"LBS numpy, {batch} frames", "value": _best_of(lambda: head.forward(**params), 3), "unit": "s", "target": ""})
    try:
        import torch
    except ImportError:
        return rows
    torch.set_num_threads(2)
    params_t = {k: torch.from_numpy(v) for k, v in params.items()}
    with torch.no_grad():
        result_t = head.forward(**params_t)
        rows.append({"metric": f"LBS torch, {batch} frames", "value": _best_of(lambda: head.forward(**params_t), 3), "unit": "s", "target": ""})
    diff = float(np.abs(result_np.vertices - result_t.vertices.numpy()).max())
    rows.append({"metric": "LBS numpy vs torch, max |Δ| over vertices", "value": diff, "unit": "m", "target": "≤ 1e-5"})
    return rows


def _flame_sized_head():
    """A random head with FLAME's sizes (5,023 vertices, 100 expressions, 36 correctives): FLAME itself
    cannot ship, and the rig's cost depends on sizes, not on the values."""
    from .core.head_model import HeadModel

    rng = np.random.default_rng(0)
    n_v, n_f = 5023, 9976
    v = rng.normal(0, 0.05, (n_v, 3)).astype(np.float32)
    regressor = np.zeros((5, n_v), np.float32)
    regressor[np.arange(5), rng.choice(n_v, 5, replace=False)] = 1.0
    return HeadModel(
        head_id="bench:flame_sized", v_template=v, faces=rng.integers(0, n_v, (n_f, 3)),
        shapedirs=rng.normal(0, 1e-3, (n_v, 3, 300)).astype(np.float32),
        exprdirs=rng.normal(0, 1e-3, (n_v, 3, 100)).astype(np.float32),
        posedirs=rng.normal(0, 1e-4, (n_v, 3, 36)).astype(np.float32),
        j_regressor=regressor, lbs_weights=rng.dirichlet(np.ones(5), n_v).astype(np.float32),
        expression_names=tuple(f"exp{i:03d}" for i in range(100)), expression_range=(-3.0, 3.0),
    )


def _speechlike_clip(head, seconds: float, fps: float):
    """Smooth random curves on every channel (the values do not matter for timing, the counts do)."""
    from .core.clip import AnimationClip

    n = int(seconds * fps)
    t = np.arange(n)[:, None] / fps
    rng = np.random.default_rng(1)
    waves = lambda k, amp: (amp * np.sin(2 * np.pi * rng.uniform(0.2, 4.0, k) * t + rng.uniform(0, 6, k))).astype(np.float32)  # noqa: E731
    lo, hi = head.expression_range
    expression = np.clip(waves(head.n_expression, hi - lo) * 0.5 + (lo + hi) / 2, lo, hi)
    return AnimationClip(fps=fps, start_frame=1, head_id=head.head_id, expression=expression,
                         expression_names=head.expression_names, jaw=waves(3, 0.1), neck=waves(3, 0.1),
                         global_rotation=waves(3, 0.05), global_translation=waves(3, 0.01),
                         eye_L=waves(3, 0.1), eye_R=waves(3, 0.1))


def bench_scene() -> list[dict]:
    """Take writing (60 s at 30 fps) and rig evaluation (frame_set)."""
    import bpy

    from .core.heads import create
    from .scene.head_builder import build_head
    from .scene.take_writer import write_take

    rows = []
    for label, head in (("default head", create()), ("FLAME-sized head", _flame_sized_head())):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        scene = bpy.context.scene
        scene.render.fps = 30
        objects = build_head(head)
        clip = _speechlike_clip(head, 60.0, 30.0)
        timings = []
        for _ in range(3):
            t0 = time.perf_counter()
            result = write_take(clip, objects, scene, "bench")
            timings.append(time.perf_counter() - t0)
        rows.append({"metric": f"write 60 s take @30 fps, {label} ({result.curves} curves, every frame)",
                     "value": min(timings), "unit": "s", "target": "< 0.3"})
        t0 = time.perf_counter()
        reduced = write_take(clip, objects, scene, "bench", key_tolerance=0.01)
        rows.append({"metric": f"  same with key reduction 0.01 ({reduced.keys / result.keys:.0%} of keys kept)",
                     "value": time.perf_counter() - t0, "unit": "s", "target": ""})
        frames = range(scene.frame_start, scene.frame_start + 300)
        scene.frame_set(frames[0])
        t0 = time.perf_counter()
        for frame in frames:
            scene.frame_set(frame)
        rows.append({"metric": f"rig evaluation frame_set, {label} (armature + shape keys + driven correctives)",
                     "value": len(frames) / (time.perf_counter() - t0), "unit": "fps", "target": "≥ 300"})
    return rows


def bench_preview() -> list[dict]:
    """`generate --render`'s preview as README command 1 makes it: the bundled sample's take (speech-like curves of
    its length) on the default head with its sound strip, rendered by render_preview — Workbench at 384² through
    the saved camera — to an H.264 MP4 with sound, and to PNG frames. Value: frames / wall seconds of the render."""
    import tempfile

    import bpy

    from .core.audio import load_audio
    from .core.console import third_party_output_silenced
    from .core.heads import create
    from .scene.session import PREVIEW_ANTIALIASING, PREVIEW_RESOLUTION, new_head_scene, render_preview
    from .scene.take_writer import write_take

    sample = Path(__file__).resolve().parent / "vendor_models" / "samples" / "hello.wav"
    head = create()
    objects = new_head_scene(head, "default", 30.0)
    clip = _speechlike_clip(head, load_audio(sample).duration, 30.0)
    write_take(clip, objects, bpy.context.scene, "hello", sound_path=sample)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, what in (("preview.mp4", "H.264 MP4 with sound"), ("preview.png", "PNG frames")):
            with third_party_output_silenced():
                t0 = time.perf_counter()
                render_preview(objects, Path(tmp) / name)
                seconds = time.perf_counter() - t0
            rows.append({"metric": f"preview {PREVIEW_RESOLUTION}², default head, Workbench (anti-aliasing "
                                   f"{PREVIEW_ANTIALIASING}), {clip.n_frames} frames → {what}",
                         "value": clip.n_frames / seconds, "unit": "fps", "target": "≥ 15 (paper: 63.74 render fps)"})
    return rows


def bench_corpus() -> list[dict]:
    """One hour of synthetic corpus on this machine's cores, and how far it sounds from real speech."""
    import tempfile
    from types import SimpleNamespace

    from .core.data.corpus import Corpus, synth_corpus
    from .core.data.realism import spectral_distance_to_real

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        summary = synth_corpus(tmp, hours=1.0, seed=0, workers=os.cpu_count() or 1)
        elapsed = time.perf_counter() - t0
        hours = sum(summary["hours"].values())
        rows.append({"metric": f"synthesize {hours:.2f} h of corpus ({sum(summary['utterances'].values())} utterances, {os.cpu_count()} workers)",
                     "value": elapsed, "unit": "s", "target": "< 600 for 1 h"})
        rows.append({"metric": "  speed", "value": hours * 3600 / elapsed, "unit": "× real time", "target": ""})
        for engine, engine_hours in summary["engine_hours"].items():
            rows.append({"metric": f"  share of audio: {engine}", "value": engine_hours / hours, "unit": "", "target": ""})
        if REAL_CLIPS_DIR.is_dir():
            sample = [u for _, u in zip(range(300), Corpus(tmp).utterances("train"))]
            groups = {"clean": [u for u in sample if not u.meta["augment"]], "augmented": [u for u in sample if u.meta["augment"]]}
            for label, group in groups.items():
                clips = [SimpleNamespace(audio=u.audio, sample_rate=u.sample_rate, engine=u.meta["engine"]) for u in group]
                report = spectral_distance_to_real(clips, REAL_CLIPS_DIR, pattern="*.mpg")
                rows.append({"metric": f"log-mel distance to the real clips, {label} synthetic ({len(clips)} clips)",
                             "value": report.distance, "unit": "dB", "target": "lower = closer"})
                for engine, distance in report.per_engine.items():
                    rows.append({"metric": f"    {label} {engine}", "value": distance, "unit": "dB", "target": ""})
    return rows


def bench_speech(device: str = "cpu") -> list[dict]:
    """The shipped speech pipeline on ``device`` ("cpu" or "cuda"): speed after load on 60 s (the first take, which
    also pays torch's one-time costs) and on a batch of lines after it, a fresh `generate` on 10 s, memory on
    10 min."""
    import tempfile

    import soundfile as sf

    from .core.device import torch_device
    from .core.heads import create
    from .core.jobs import run_sync
    from .core.pipeline import GenerateRequest
    from .core.speech.pipeline import SpeechPipeline

    sample = Path(__file__).resolve().parent / "vendor_models" / "samples" / "hello.wav"
    speech, rate = sf.read(sample, dtype="float32")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for seconds in (10, 60, 600):
            paths[seconds] = Path(tmp) / f"speech_{seconds}s.wav"
            sf.write(paths[seconds], np.resize(speech, int(seconds * rate)), rate)
        device = torch_device(device, notice=print)
        pipeline = SpeechPipeline(device=device)
        pipeline.prepare()
        head = create()
        t0 = time.perf_counter()
        run_sync(pipeline, GenerateRequest(audio_path=paths[60], head=head))
        rows.append({"metric": f"generate 60 s of audio after load (default head, {device}; the first take)",
                     "value": 60 / (time.perf_counter() - t0), "unit": "× real time", "target": "≥ 50"})
        # a batch's lines: 20 lengths of 2-12 s (the same every run), each cut from the sample at its own place
        lengths = np.random.default_rng(0).uniform(2.0, 12.0, 20)
        lines = []
        for k, seconds in enumerate(lengths):
            lines.append(Path(tmp) / f"line_{k}.wav")
            sf.write(lines[-1], np.resize(np.roll(speech, 1000 * k), int(seconds * rate)), rate)
        t0 = time.perf_counter()
        for line in lines:
            run_sync(pipeline, GenerateRequest(audio_path=line, head=head))
        rows.append({"metric": f"generate a batch of 20 lines of 2-12 s ({lengths.sum():.0f} s) after that take",
                     "value": lengths.sum() / (time.perf_counter() - t0), "unit": "× real time", "target": "≥ 50"})
        cmd = [sys.executable, "-m", "lattice_talk", "generate", str(paths[10]), "--out", str(Path(tmp) / "t.npz"), "--quiet",
               "--device", device]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        rows.append({"metric": "fresh process: `generate` 10 s → .npz (imports + load + run)", "value": time.perf_counter() - t0,
                     "unit": "s", "target": "< 5"})
        code = ("import resource, sys; from lattice_talk.cli import main; "
                "main(['generate', sys.argv[1], '--out', sys.argv[2], '--quiet', '--device', sys.argv[3]]); "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
        out = subprocess.run([sys.executable, "-c", code, str(paths[600]), str(Path(tmp) / "long.npz"), device], check=True,
                             capture_output=True, text=True).stdout.split()[-1]
        rows.append({"metric": "peak memory, `generate` on 10 min of audio (chunked)", "value": int(out) / 1024, "unit": "MB",
                     "target": "< 1536"})
    rows += _word_modes_cost(pipeline, head, sample)
    return rows


SAMPLE_TEXT = "Hello! My name is Lattice Talk. Bob brought a big bowl of soup for me."  # vendor_models/samples/MODEL_CARD.md


def _word_modes_cost(pipeline, head, sample: Path) -> list[dict]:
    """Extra seconds transcript mode (forced alignment) and recognition mode (recognition, then alignment) add to a
    take of the bundled sample, best of 3 each."""
    from .core.jobs import run_sync
    from .core.pipeline import GenerateRequest, GenerateSettings

    def take(**request) -> float:
        return _best_of(lambda: run_sync(pipeline, GenerateRequest(audio_path=sample, head=head, **request)), repeats=3)

    plain = take()
    aligned = take(transcript=SAMPLE_TEXT)
    recognized = take(settings=GenerateSettings(recognize_words=True))
    return [{"metric": "transcript mode: extra time on the 4.3 s sample (alignment)", "value": aligned - plain,
             "unit": "s", "target": "reported"},
            {"metric": "recognition mode (`--recognize-words`): extra time on the 4.3 s sample", "value": recognized - plain,
             "unit": "s", "target": "reported"}]


def bench_video() -> list[dict]:
    """Video analysis at 640×480: decode, face mesh (one pass, with the mirror pass) and optical flow alone, then
    `track_video` end to end (default: with the mirror pass; and one pass).

    The input is the real talking-head clips of the repository's tests (tests/data/grid_s1, 360×288, 3 s each)
    scaled to 600×480 inside a 640×480 frame, each played forward then backward (12 s, no cut within a clip),
    written once to a temporary MP4."""
    import tempfile

    import cv2

    from .core.video.decode import open_video, read_frames
    from .core.video.flow import FaceFlow
    from .core.video.landmarks import FaceMesh
    from .core.video.track import track_video

    clip = []
    for real in sorted(REAL_CLIPS_DIR.glob("*.mpg")):
        cap = cv2.VideoCapture(str(real))
        frames = []
        while (ok_frame := cap.read())[0]:
            frames.append(cv2.copyMakeBorder(cv2.resize(ok_frame[1], (600, 480), interpolation=cv2.INTER_AREA), 0, 0, 20, 20,
                                             cv2.BORDER_REPLICATE))
        cap.release()
        clip += frames + frames[::-1]
    if not clip:
        raise SystemExit(f"bench video needs the repository's real clips (a clone, not an install): {REAL_CLIPS_DIR}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_640x480.mp4"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (640, 480))
        for frame in clip:
            writer.write(frame)
        writer.release()
        track_video(real)  # warm-up: imports (mediapipe, cv2), file cache
        label = f"640×480, {len(clip)} frames"

        t0 = time.perf_counter()
        frames = list(read_frames(open_video(path)[0]))
        rows.append({"metric": f"decode (OpenCV + RGB/grey), {label}", "value": len(frames) / (time.perf_counter() - t0),
                     "unit": "fps", "target": ""})
        for mirror_pass, passes in ((False, "one pass"), (True, "with the mirror pass (default)")):
            with FaceMesh(mirror_pass) as mesh:
                t0 = time.perf_counter()
                points = [mesh(f.rgb) for f in frames]
                rows.append({"metric": f"face mesh alone (MediaPipe 0.10.21, 478 points, video mode), {passes}",
                             "value": len(frames) / (time.perf_counter() - t0), "unit": "fps", "target": ""})
        flow = FaceFlow("ultrafast")
        t0 = time.perf_counter()
        for a, b, p in zip(frames, frames[1:], points):
            flow(a.gray, b.gray, p[:, :2] * (640, 480))
        rows.append({"metric": "optical flow alone (DIS ultrafast, face box)", "value": (len(frames) - 1) / (time.perf_counter() - t0),
                     "unit": "fps", "target": ""})
        for attempt in (1, 2):
            timings: dict[str, float] = {}
            t0 = time.perf_counter()
            track = track_video(path, timings=timings)
            rows.append({"metric": f"track_video end to end, {label} (run {attempt}: model start, pose, eyes, all)",
                         "value": track.n_frames / (time.perf_counter() - t0), "unit": "fps", "target": "≥ 60"})
        for stage, seconds in timings.items():
            note = " (time waiting on the reader thread)" if stage == "decode" else ""
            rows.append({"metric": f"  inside track_video run 2: {stage}{note}",
                         "value": 1000 * seconds / track.n_frames, "unit": "ms/frame", "target": ""})
        t0 = time.perf_counter()
        track = track_video(path, mirror_pass=False)
        rows.append({"metric": f"track_video end to end, {label}, one pass (mirror_pass=False)",
                     "value": track.n_frames / (time.perf_counter() - t0), "unit": "fps", "target": ""})
        t0 = time.perf_counter()
        track = track_video(REAL_CLIPS_DIR / "sgic1a.mpg")
        rows.append({"metric": f"track_video end to end, a real clip as is (360×288, {track.n_frames} frames, with sound)",
                     "value": track.n_frames / (time.perf_counter() - t0), "unit": "fps", "target": ""})
    return rows


def bench_video_model() -> list[dict]:
    """The video face models after tracking, on CPU: the learned model (vendor_models/video/meshconv/, opt-in) at 1
    and 2 torch threads, and the non-learned retarget baseline, on the real talking-head clip's track."""
    import torch

    from .core.motion.face_models import LEARNED_VIDEO_MODEL_DIR, RetargetFaceModel
    from .core.motion.video_model import load_face_model
    from .core.video.track import track_video

    real = REAL_CLIPS_DIR / "sgic1a.mpg"
    if not real.is_file():
        raise SystemExit(f"bench video-model needs the repository's real clip (a clone, not an install): {real}")
    track = track_video(real, with_audio=False)
    model = load_face_model(LEARNED_VIDEO_MODEL_DIR)
    threads = torch.get_num_threads()
    rows = []
    for n in (1, 2):
        torch.set_num_threads(n)
        model.predict(track)  # warm-up
        seconds = _best_of(lambda: model.predict(track), repeats=3)
        rows.append({"metric": f"learned video model ({model.model_id}), {track.n_frames} frames, {n} torch thread(s)",
                     "value": track.n_frames / seconds, "unit": "fps", "target": "≥ 60"})
    torch.set_num_threads(threads)
    baseline = RetargetFaceModel()
    t0 = time.perf_counter()
    baseline.predict(track)
    rows.append({"metric": "retarget baseline (box-constrained solve per frame), incl. head load", "unit": "fps",
                 "value": track.n_frames / (time.perf_counter() - t0), "target": ""})
    return rows


def bench_farm(run_cli: Callable[[list[str]], int], count: int = 40, seconds: float = 10.0, repeats: int = 3) -> list[dict]:
    """``generate`` on ``count`` lines of ``seconds`` each, side by side: the one-machine batch in this process, then the
    farm batch (``--scheduler``) on local clusters of 1 and 2 single-threaded worker processes, started and warmed
    (models preloaded) before the clock; best of ``repeats`` each. The farm's overhead: its 1-worker time over the
    one-machine time, and its dispatch alone (wall time less the workers' time on the lines, from the manifest).
    ``run_cli``: the CLI's ``main``, which runs each batch in this process."""
    import tempfile
    from contextlib import redirect_stdout

    import soundfile as sf
    from distributed import LocalCluster


    def batch(out: Path, *options: str) -> tuple[float, float]:
        """(wall seconds, seconds spent on the lines themselves) of one batch, made afresh."""
        with open(os.devnull, "w") as quiet, redirect_stdout(quiet):  # the table is the output, not each summary
            t0 = time.perf_counter()
            run_cli(["generate", str(lines), "--out", str(out), "--quiet", "--force", *options])
            wall = time.perf_counter() - t0
        return wall, sum(item["seconds"] for item in json.loads((out / "manifest.json").read_text())["items"])

    sample = Path(__file__).resolve().parent / "vendor_models" / "samples" / "hello.wav"
    speech, rate = sf.read(sample, dtype="float32")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        lines = Path(tmp) / "vo"
        lines.mkdir()
        for k in range(count):  # each line its own audio: the sample repeated from a different place
            sf.write(lines / f"line{k:02d}.wav", np.resize(np.roll(speech, k * rate // 10), int(seconds * rate)), rate)
        batch(Path(tmp) / "warm")  # imports and caches, as a farm worker's preload has them
        one = min(batch(Path(tmp) / "one")[0] for _ in range(repeats))
        rows.append({"metric": f"one machine: {count} lines of {seconds:g} s → .npz", "value": count / one,
                     "unit": "lines/s", "target": ""})
        farm, dispatch = {}, 0.0
        for workers in (1, 2):
            plural = "s" * (workers > 1)
            t0 = time.perf_counter()
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address="127.0.0.1:0", preload=["lattice_talk.farm"], silence_logs=50) as cluster:
                started = time.perf_counter() - t0
                runs = [batch(Path(tmp) / f"farm{workers}", "--scheduler", cluster.scheduler_address) for _ in range(repeats)]
            farm[workers] = min(wall for wall, _ in runs)
            if workers == 1:
                dispatch = min(wall - busy for wall, busy in runs) / count
            rows.append({"metric": f"farm, {workers} local worker{plural}: the same lines", "value": count / farm[workers],
                         "unit": "lines/s", "target": ""})
            rows.append({"metric": f"  cluster start, {workers} worker{plural} with models preloaded (not in the above)",
                         "value": started, "unit": "s", "target": ""})
        rows.append({"metric": "farm speed-up, 2 workers over 1", "value": farm[1] / farm[2], "unit": "×",
                     "target": f"≤ {min(2, os.cpu_count() or 1)} (cores)"})
        rows.append({"metric": f"farm overhead, 1 worker vs one machine ({seconds:g} s lines)",
                     "value": 100 * (farm[1] - one) / one, "unit": "%", "target": "< 10"})
        rows.append({"metric": "  of which dispatch per line (farm wall less the worker's time on the lines)",
                     "value": 1000 * dispatch, "unit": "ms", "target": f"{100 * dispatch * count / one:.1f} % of a line"})
    return rows


BENCHMARKS: dict[str, Callable[[], list[dict]]] = {"head": bench_head, "scene": bench_scene, "preview": bench_preview,
                                                   "corpus": bench_corpus, "speech": bench_speech, "video": bench_video,
                                                   "video-model": bench_video_model, "fuzz": bench_fuzz}


def run_benchmark(name: str, json_path: Path | None, device: str = "cpu",
                  run_cli: Callable[[list[str]], int] | None = None) -> list[dict]:
    """Run benchmark ``name`` and write its JSON; ``device``: the torch device of ``speech`` (the one that runs a model);
    ``run_cli``: the CLI's ``main``, for ``farm``, which times whole batches through it."""
    if name == "farm" and run_cli is None:
        raise LatticeTalkError("bench farm runs batches through the CLI: call it as 'python -m lattice_talk bench farm'")
    rows = bench_speech(device) if name == "speech" else bench_farm(run_cli) if name == "farm" else BENCHMARKS[name]()
    width = max(len(r["metric"]) for r in rows)
    print(f"{'metric':<{width}}  {'value':>12}  unit  target")
    for r in rows:
        print(f"{r['metric']:<{width}}  {r['value']:>12.4g}  {r['unit']:<4}  {r['target']}")
    json_path = json_path or Path("out") / f"bench_{name}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
               "device": device}
    json_path.write_text(json.dumps({"benchmark": name, "machine": machine, "rows": rows}, indent=2))
    print(f"wrote {json_path}")
    return rows
