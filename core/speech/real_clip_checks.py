"""Proxy checks on real speech without ground-truth motion: does the mouth rest in silence and follow loudness?

For each clip: the generated jaw opening per frame against the audio level per frame. Silent frames are
30 dB under the clip's speech level; loud frames are its loudest fifth. Pass: mean jaw in silence ≤ 30 % of
mean jaw when loud, and jaw–loudness correlation ≥ 0.4."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SILENCE_DB_BELOW_SPEECH = 30.0
MAX_SILENT_RATIO, MIN_CORRELATION = 0.30, 0.40


def jaw_loudness(jaw: np.ndarray, audio: np.ndarray, sample_rate: int, fps: float) -> dict:
    from ..prosody import frame_energy

    energy = frame_energy(audio, sample_rate, fps, len(jaw))
    speech_level = np.percentile(energy, 90)
    silent = energy < speech_level - SILENCE_DB_BELOW_SPEECH
    loud = energy >= np.percentile(energy, 80)
    ratio = float(jaw[silent].mean() / max(jaw[loud].mean(), 1e-6)) if silent.any() else None  # no silence to judge
    loudness = np.sqrt(10 ** (energy / 10))  # RMS amplitude
    corr = float(np.corrcoef(jaw, loudness)[0, 1]) if jaw.std() > 0 else 0.0
    return {"silent_frames": int(silent.sum()), "loud_frames": int(loud.sum()), "silent_to_loud_jaw": ratio,
            "jaw_loudness_corr": corr,
            "pass": bool((ratio is None or ratio <= MAX_SILENT_RATIO) and corr >= MIN_CORRELATION),
            "loudest_frame": int(np.argmax(energy)), "quietest_frame": int(np.argmin(energy))}


def real_clip_checks(pipeline, clip_paths: list[Path], head, fps: float = 30.0) -> tuple[list[dict], list]:
    """Proxy rows per clip, and the generated clips (for contact sheets)."""
    from ..audio import load_audio
    from ..jobs import run_sync
    from ..pipeline import GenerateRequest, GenerateSettings

    rows, clips = [], []
    for path in clip_paths:
        clip = run_sync(pipeline, GenerateRequest(audio_path=path, head=head, settings=GenerateSettings(fps=fps)))
        audio = load_audio(path)
        rows.append({"clip": Path(path).name, **jaw_loudness(np.linalg.norm(clip.jaw, axis=1), audio.samples, audio.sample_rate, fps)})
        clips.append(clip)
    return rows, clips
