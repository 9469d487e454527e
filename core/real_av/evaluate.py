"""Speech models against real talking faces: every model and the loudness baseline over a manifest's clips.

The audio alone goes into each model (as ``generate`` gets it, on the default head at the video's frame
rate); its mouth opening and lip gap are read off the posed head at the same MediaPipe points as the real
face and placed on the video's frames (a sound that starts later than the picture is shifted to match). A file
whose picture runs ahead of or behind its own sound (by its bilabial releases or a file of the same recording,
:mod:`.own_offset`, no model) has
its real lips moved onto the sound's clock first, as ``video eval-real`` does: the prediction is made from the
sound, so it is compared with what the face did when that sound was made."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import numpy as np

from ..lip_geometry import INNER_LIP_PAIRS, MM
from .manifest import RealClip, check_folder
from .lip_release import picture_on_sound_clock, release_sync
from .own_offset import own_offset
from .real_lips import RealLips, load_real_lips
from ..lip_geometry import OPENING_POINTS, opening_ratio
from .score import Prediction, score_clip, summarize

LOUDNESS = "loudness envelope"
_GAP_POINTS = tuple(i for pair in INNER_LIP_PAIRS for i in pair)


class HeadLips:
    """Mouth opening and inner-lip gap of the default head for a clip's units and jaw."""

    def __init__(self):
        from ..heads import create
        from ..landmark_rig import LandmarkRig

        self._rig = LandmarkRig(create("default"), point_ids=OPENING_POINTS + _GAP_POINTS)

    def __call__(self, clip) -> tuple[np.ndarray, np.ndarray]:
        pose = np.zeros((clip.n_frames, 5, 3), np.float32)
        if clip.jaw is not None:
            pose[:, 2] = clip.jaw
        points = self._rig.points(np.asarray(clip.expression, np.float32), pose).astype(np.float64)
        opening = opening_ratio(points[:, :4])
        pairs = points[:, 4:].reshape(len(points), len(INNER_LIP_PAIRS), 2, 3)
        gap = np.linalg.norm(pairs[:, :, 0] - pairs[:, :, 1], axis=-1).min(axis=1) * MM
        return opening, gap


def _on_video_frames(signal: np.ndarray, fps: float, lips: RealLips) -> np.ndarray:
    """A signal sampled at audio frame times → the video's frames (shifted by where the sound starts)."""
    audio_times = np.arange(len(signal)) / fps + lips.audio_start
    return np.interp(np.arange(lips.n_frames) / lips.fps, audio_times, signal)


MODES = ("audio", "transcript", "recognition")


def speech_model_predictor(model_dir: str | Path, head_lips: HeadLips,
                           mode: str = "audio") -> Callable[[RealLips], Prediction]:
    """The model on each clip's audio; ``mode`` "transcript" adds the clip's manifest transcript (transcript mode),
    "recognition" the recogniser's words instead (``generate --recognize-words``)."""
    from ..heads import create
    from ..jobs import run_sync
    from ..pipeline import GenerateRequest, GenerateSettings
    from ..speech.pipeline import SpeechPipeline

    pipeline, head = SpeechPipeline(model_dir), create("default")

    def predict(lips: RealLips) -> Prediction:
        settings = GenerateSettings(fps=lips.fps, blinks=False, head_motion=0.0,
                                    recognize_words=mode == "recognition")
        transcript = lips.transcript if mode == "transcript" else None
        clip = run_sync(pipeline, GenerateRequest(audio_path=lips.audio_path, head=head, settings=settings,
                                                  transcript=transcript))
        opening, gap = head_lips(clip)
        return Prediction(_on_video_frames(opening, lips.fps, lips), _on_video_frames(gap, lips.fps, lips))

    return predict


def model_predictors(models: dict[str, str | Path],
                     modes: tuple[str, ...] = ("audio",)) -> dict[str, Callable[[RealLips], Prediction]]:
    """One predictor per model and mode, named "MODEL" for the audio alone and "MODEL + MODE" otherwise."""
    head_lips = HeadLips()
    return {name if mode == "audio" else f"{name} + {mode}": speech_model_predictor(path, head_lips, mode)
            for mode in modes for name, path in models.items()}


def evaluate_real(clips: list[RealClip], folder: str | Path, models: dict[str, str | Path],
                  cache_dir: str | Path | None = None, progress: Callable[[str], None] = lambda s: None,
                  modes: tuple[str, ...] = ("audio",), manifest: list[RealClip] | None = None) -> dict:
    """{"clips": per-clip rows per predictor, "summary": one row per predictor}; the loudness baseline always.
    Each model runs in each of ``modes`` (:data:`MODES`; with "transcript", clips without one get the audio alone).
    ``manifest``: every clip of the manifest, where a clip's same-recording twin is looked up (default: ``clips``)."""
    check_folder(clips, folder)
    predictors = model_predictors(models, modes)
    predictors[LOUDNESS] = lambda lips: Prediction(lips.loudness)
    rows: dict[str, list[dict]] = {name: [] for name in predictors}
    signals: dict[str, dict] = {}
    for k, clip in enumerate(clips):
        progress(f"{clip.name} ({k + 1}/{len(clips)})")
        lips = load_real_lips(clip, folder, cache_dir)
        own = own_offset(clip, release_sync(lips), manifest or clips, folder, cache_dir)
        if own.frames is not None:
            lips = picture_on_sound_clock(lips, own.frames)
        signals[clip.name] = {"lips": lips}
        for name, predict in predictors.items():
            prediction = predict(lips)
            signals[clip.name][name] = prediction
            rows[name].append({**score_clip(prediction, lips), "own_offset_frames": round(own.offset, 3),
                               "own_offset_source": own.source})
    return {"clips": rows, "summary": {name: summarize(r) for name, r in rows.items()}, "signals": signals}


def format_summary(summary: dict) -> str:
    head = (f"{'predictor':<28} {'r shared lag':>14} {'r lag 0':>8} {'r best lag':>10} {'p/b/m closed':>14} "
            f"{'own closures':>13} {'closed where open':>18}")
    lines = [head, "-" * len(head)]
    for name, s in summary.items():
        pbm = f"{s['pbm_closed']}/{s['pbm']} ({100 * s['pbm_closure_rate']:.0f} %)" if "pbm" in s else "—"
        own = f"{s['own_closures_made']}/{s['own_closures']}" if "pbm" in s else "—"
        false = f"{s['closures_where_open']}/{s['predicted_closures']}" if "pbm" in s else "—"
        lines.append(f"{name:<28} {s['r_shared_lag']:>6.3f} @{1000 * s['shared_lag_s']:>+5.0f} ms {s['r_lag0']:>8.3f} "
                     f"{s['r_best_lag']:>10.3f} {pbm:>14} {own:>13} {false:>18}")
    return "\n".join(lines)


def write_report(result: dict, out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "real_speech.json"
    path.write_text(json.dumps({"summary": result["summary"], "clips": result["clips"]}, indent=1))
    return path
