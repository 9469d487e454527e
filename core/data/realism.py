"""How far synthetic speech sounds from real recordings, as one number: log-mel spectrum statistics.

For each clip: a Hann-window STFT (25 ms window, 10 ms hop at 16 kHz), power summed into a 40-band
triangular mel filterbank (built here with numpy, 60–7600 Hz), in dB. Only speech frames count (within
35 dB of the clip's loud frames). A clip's *shape* is its mean log-mel vector minus its own mean level —
so recording level does not matter — and its *dynamics* is the per-band standard deviation over frames.
A set of clips is the average of those. The distance between two sets is the RMS difference of their
shapes plus the RMS difference of their dynamics, in dB: 0 for identical sets, larger when further apart.

It is a coarse check of channel and spectral realism (bandwidth, tilt, noise floor, reverberant smearing),
not of naturalness or intelligibility.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import SPEECH_RATE
from ..speech.log_mel import mel_filterbank

__all__ = ["MelProfile", "RealismReport", "clip_profile", "profile_distance", "set_profile", "spectral_distance_to_real"]

RATE = SPEECH_RATE
N_FFT = 512
WIN = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
FMIN, FMAX = 60.0, 7600.0
SPEECH_RANGE_DB = 35.0


_FILTERBANK = mel_filterbank(RATE, N_FFT, N_MELS, FMIN, FMAX)


@dataclass(frozen=True)
class MelProfile:
    """Spectral shape (mean log-mel minus its mean level) and dynamics (per-band std), both in dB."""

    shape: np.ndarray  # (N_MELS,)
    dynamics: np.ndarray  # (N_MELS,)
    n_clips: int = 1


@dataclass(frozen=True)
class RealismReport:
    distance: float  # all synthetic clips against all real ones
    per_engine: dict[str, float]  # each engine's clips against the real ones
    n_synthetic: int
    n_real: int


def _log_mel(samples: np.ndarray, rate: int) -> np.ndarray:
    """``(frames, N_MELS)`` log-mel power in dB at 16 kHz."""
    from scipy.signal import resample_poly, stft

    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1 or x.size < WIN:
        raise ValueError(f"need mono audio of at least {WIN} samples, got shape {x.shape}")
    if rate != RATE:
        g = math.gcd(RATE, rate)
        x = resample_poly(x, RATE // g, rate // g)
    _, _, z = stft(x, fs=RATE, window="hann", nperseg=WIN, noverlap=WIN - HOP, nfft=N_FFT, boundary=None, padded=False)
    power = np.abs(z) ** 2  # (freqs, frames)
    return 10.0 * np.log10(_FILTERBANK @ power + 1e-12).T


def clip_profile(samples: np.ndarray, rate: int) -> MelProfile:
    """The :class:`MelProfile` of one clip, over its speech frames."""
    logmel = _log_mel(samples, rate)
    level = 10.0 * np.log10(np.mean(10.0 ** (logmel / 10.0), axis=1))  # frame power, dB
    loud = np.percentile(level, 95)
    frames = logmel[level >= loud - SPEECH_RANGE_DB]
    mean = frames.mean(axis=0)
    return MelProfile(shape=mean - mean.mean(), dynamics=frames.std(axis=0), n_clips=1)


def set_profile(profiles: Iterable[MelProfile]) -> MelProfile:
    """The average profile of a set of clips (each clip weighs the same)."""
    profiles = list(profiles)
    if not profiles:
        raise ValueError("no clips to profile")
    return MelProfile(
        shape=np.mean([p.shape for p in profiles], axis=0),
        dynamics=np.mean([p.dynamics for p in profiles], axis=0),
        n_clips=sum(p.n_clips for p in profiles),
    )


def profile_distance(a: MelProfile, b: MelProfile) -> float:
    """RMS shape difference plus RMS dynamics difference, in dB (0 for identical profiles)."""
    return float(np.sqrt(np.mean((a.shape - b.shape) ** 2)) + np.sqrt(np.mean((a.dynamics - b.dynamics) ** 2)))


def real_profile(real_dir: str | os.PathLike[str], pattern: str = "*.wav") -> MelProfile:
    """The set profile of the recordings in ``real_dir`` matching ``pattern`` (loaded with core.audio)."""
    from ..audio import load_audio

    paths = sorted(Path(real_dir).glob(pattern))
    if not paths:
        raise FileNotFoundError(f"{real_dir}: no files match {pattern!r}")
    profiles = []
    for path in paths:
        audio = load_audio(path, target_rate=RATE)
        profiles.append(clip_profile(audio.samples, audio.sample_rate))
    return set_profile(profiles)


def spectral_distance_to_real(utterances: Iterable, real_dir: str | os.PathLike[str], pattern: str = "*.wav") -> RealismReport:
    """Distance between synthetic ``utterances`` (anything with ``audio``, ``sample_rate`` and ``engine``)
    and the real recordings in ``real_dir``: overall and per engine. Deterministic."""
    utterances = list(utterances)
    if not utterances:
        raise ValueError("no synthetic utterances given")
    real = real_profile(real_dir, pattern)
    by_engine: dict[str, list[MelProfile]] = {}
    every = []
    for u in utterances:
        profile = clip_profile(u.audio, u.sample_rate)
        every.append(profile)
        by_engine.setdefault(getattr(u, "engine", "unknown"), []).append(profile)
    return RealismReport(
        distance=profile_distance(set_profile(every), real),
        per_engine={engine: profile_distance(set_profile(ps), real) for engine, ps in sorted(by_engine.items())},
        n_synthetic=len(every),
        n_real=real.n_clips,
    )
