"""The audio/video offset estimate on real clips: their own sound, and the same sound shifted by known amounts.

Each clip's sound is first put on the video's clock (the container's audio start), so its true offset is 0; a
shift of +k frames then cuts k frames off the sound's start (the video is k frames late against it), −k puts k
frames of faint room tone before it. The speech model runs on each shifted sound, as ``generate --video`` runs it,
and :func:`~lattice_talk.core.motion.fusion.estimate_offset` sees the video's tracked mouth beside it (the model's
mouth-opening head's opening where it has one, as ``generate --video`` reads it; else the take's mouth). A case is
*right* when the estimate is trusted and within ±1 frame of the shift, *declined* when it is not trusted, *wrong*
when it is trusted and further off — the one outcome that must not happen.

"True offset 0" assumes a file's own sound is in sync with its picture. Many in-the-wild files are not, so each case
is also scored against the clip's own offset as the lips show it at bilabial releases
(:mod:`~lattice_talk.core.real_av.lip_release`, no model involved): ``release`` is that offset (+ the shift) where
enough consistent releases say it, or a file of the same recording does (:mod:`~lattice_talk.core.real_av.own_offset`),
and ``own_outcome`` the case's outcome against it — against the shift alone (an own offset of 0) where neither says
anything."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from .manifest import RealClip, check_folder

SHIFTS = (0, 3, -3, 7, -7)
ROOM_TONE = 1e-3  # RMS of the noise put before a sound shifted to start late


def shifted_sound(samples: np.ndarray, sample_rate: int, fps: float, shift: int, seed: int = 0) -> np.ndarray:
    """The sound against which the video is ``shift`` frames late (see the module docstring)."""
    cut = int(round(abs(shift) * sample_rate / fps))
    if shift >= 0:
        return samples[cut:]
    noise = ROOM_TONE * np.random.default_rng(seed).normal(size=cut)
    return np.concatenate([noise.astype(samples.dtype), samples])


def _sound_on_video_clock(samples: np.ndarray, sample_rate: int, audio_start: float) -> np.ndarray:
    """Samples such that sample 0 plays at video time 0 (``audio_start``: the sound's start in video time)."""
    n = int(round(abs(audio_start) * sample_rate))
    if audio_start > 0:
        return np.concatenate([np.zeros(n, samples.dtype), samples])
    return samples[n:]


def evaluate_offsets(clips: list[RealClip], folder: str | Path, model_dir: str | Path | None = None,
                     cache_dir: str | Path | None = None, shifts: tuple[int, ...] = SHIFTS,
                     progress: Callable[[str], None] = lambda s: None, manifest: list[RealClip] | None = None) -> dict:
    """{"cases": one row per clip and shift, "summary": per shift and overall counts of right/declined/wrong}.
    ``manifest``: every clip of the manifest, where a clip's same-recording twin is looked up (default: ``clips``)."""
    import tempfile

    import soundfile

    from ..audio import load_audio
    from ..heads import create
    from ..jobs import run_sync
    from ..motion.fusion import CONFIDENCE_RAMP, estimate_offset, predicted_mouth_opening
    from ..pipeline import GenerateRequest, GenerateSettings
    from ..speech.pipeline import MODEL_DIR, SpeechPipeline
    from .lip_release import clip_release_sync
    from .own_offset import own_offset
    from .real_lips import tracked_opening

    check_folder(clips, folder)
    folder = Path(folder)
    pipeline, head = SpeechPipeline(model_dir or MODEL_DIR), create("default")
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        tracks = cache_dir or tmp  # the release check reads the same track: without a cache it would track again
        for k, clip in enumerate(clips):
            progress(f"{clip.name} ({k + 1}/{len(clips)})")
            opening, confidence, fps, audio_offset = tracked_opening(folder / clip.video, clip.sha256, tracks)
            releases = clip_release_sync(clip, folder, tracks)
            own = own_offset(clip, releases, manifest or clips, folder, tracks)
            sound = load_audio(folder / (clip.audio or clip.video))
            samples = _sound_on_video_clock(sound.samples, sound.sample_rate, 0.0 if clip.audio else audio_offset)
            for shift in shifts:
                audio = shifted_sound(samples, sound.sample_rate, fps, shift)
                wav = Path(tmp) / f"{clip.name}_{shift}.wav"
                soundfile.write(wav, audio, sound.sample_rate)
                settings = GenerateSettings(fps=fps, blinks=False, head_motion=0.0)
                predicted = pipeline.mouth_opening(wav, fps)  # the head's, as generate --video reads it
                if predicted is None:  # a model without one: the take's mouth
                    take = run_sync(pipeline, GenerateRequest(audio_path=wav, head=head, settings=settings))
                    predicted = predicted_mouth_opening(take.expression, take.expression_names, take.jaw[:, 0])
                estimate = estimate_offset(opening, predicted, fps, confidence > CONFIDENCE_RAMP[0])
                release = None if own.frames is None else own.whole_frames + shift
                cases.append({"clip": clip.name, "split": clip.split, "own_sound": clip.audio is None, "fps": fps,
                              "shift": shift, "estimate": estimate.frames,
                              "estimate_fraction": round(estimate.seconds * fps, 3), "best_lag": estimate.best_frames,
                              "evidence": round(estimate.correlation, 4), "second_peak": round(estimate.second_peak, 4),
                              "agreeing": estimate.agreeing, "significance": estimate.significance,
                              "releases": len(releases.lags), "release_median": releases.median,
                              "release": release, "own_offset_source": own.source,
                              **case_outcomes(estimate, shift, release)})
    return {"cases": cases, "summary": summarize_offsets(cases)}


def case_outcomes(estimate, shift: int, release: int | None) -> dict[str, str]:
    """A case's outcome against a true offset of 0 (``outcome``) and against the clip's own offset (``own_outcome``:
    its ``release`` offset + the shift where the releases give one, else the shift alone)."""
    own = shift if release is None else release
    return {"outcome": _outcome(estimate, shift), "own_outcome": _outcome(estimate, own)}


def _outcome(estimate, truth: int) -> str:
    if not estimate.reliable:
        return "declined"
    return "right" if abs(estimate.frames - truth) <= 1 else "wrong"


OUTCOMES = ("right", "declined", "wrong")


def summarize_offsets(cases: list[dict]) -> dict:
    """Counts of each outcome per shift and over all shifts: against a true offset of 0 ("outcome") and against the
    clips' own offsets, the release offset where there is one ("own_outcome")."""
    def counts(rows, key):
        return {"cases": len(rows), **{o: sum(r[key] == o for r in rows) for o in OUTCOMES}}

    shifts = sorted({r["shift"] for r in cases}, key=lambda s: (abs(s), s))
    return {table: {**{f"{s:+d}": counts([r for r in cases if r["shift"] == s], key) for s in shifts},
                    "shifted": counts([r for r in cases if r["shift"] != 0], key), "all": counts(cases, key)}
            for table, key in (("true offset 0", "outcome"),
                               ("own offset (release offset where known, else 0)", "own_outcome"))}


def format_offsets(summary: dict) -> str:
    lines = []
    for table, rows in summary.items():
        head = f"{'shift (frames)':<16} {'cases':>6} {'right ±1':>10} {'declined':>10} {'wrong':>7}"
        lines += [f"against the {table}:", head, "-" * len(head)]
        for name, c in rows.items():
            lines.append(f"{name:<16} {c['cases']:>6} {c['right']:>10} {c['declined']:>10} {c['wrong']:>7}")
    return "\n".join(lines)

