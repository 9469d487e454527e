"""Beyond the mouth, from the audio alone: brows on pitch accents, blinks that prefer pauses and small head motion
from loudness, deterministic for a seed. What an audio-only take gets for its eyes, brows and head (the reference
video replaces it where it has a say), and what the synthetic corpus gets too."""

from __future__ import annotations

import numpy as np

from .phonemes import REST, PhonemeEvent


def frame_energy(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """RMS level per video frame, in dB (−100 for digital silence)."""
    hop = sample_rate / fps
    edges = np.minimum((np.arange(n_frames + 1) * hop).astype(int), len(audio))  # frame i: audio[edges[i]:edges[i+1]]
    counts = np.diff(edges)
    out = np.full(n_frames, -100.0)
    heard = counts > 0
    if heard.any():  # per-frame sums (a running sum over a long take loses quiet frames' precision)
        power = np.add.reduceat(np.asarray(audio[:edges[-1]], np.float64) ** 2, edges[:-1][heard])
        out[heard] = 20 * np.log10(np.maximum(np.sqrt(power / counts[heard]), 1e-5))
    return out


PITCH_BLOCK = 1024  # frames per FFT block: bounded memory on long takes (10 min at 30 fps in one go peaked at ~1 GB)


def frame_pitch(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int, fmin: float = 70.0, fmax: float = 400.0) -> np.ndarray:
    """F0 per frame in Hz from the normalised autocorrelation (0 where unvoiced)."""
    win = int(0.04 * sample_rate)
    hop = sample_rate / fps
    lags = np.arange(int(sample_rate / fmax), int(sample_rate / fmin))
    f0 = np.zeros(n_frames)
    starts = (np.arange(n_frames) * hop).astype(int)
    padded = np.pad(audio, (0, max(0, starts[-1] + win - len(audio)) if n_frames else 0))  # the last windows run past the end
    for first in range(0, n_frames, PITCH_BLOCK):
        block = starts[first:first + PITCH_BLOCK]
        frames = padded[block[:, None] + np.arange(win)]
        frames = frames - frames.mean(1, keepdims=True)
        spectrum = np.fft.rfft(frames, 2 * win)
        acf = np.fft.irfft(np.abs(spectrum) ** 2)[:, :win]
        acf = acf / np.maximum(acf[:, :1], 1e-12)
        best = lags[np.argmax(acf[:, lags], axis=1)]
        voiced = acf[np.arange(len(block)), best] > 0.45
        f0[first:first + len(block)][voiced] = sample_rate / best[voiced]
    return f0


def _slow_noise(n: int, fps: float, rng: np.random.Generator, amplitude: float, band: tuple[float, float] = (0.08, 0.5)) -> np.ndarray:
    t = np.arange(n) / fps
    freqs = rng.uniform(*band, 4)
    phases = rng.uniform(0, 2 * np.pi, 4)
    weights = rng.uniform(0.5, 1.0, 4)
    wave = (weights[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)
    return amplitude * wave / weights.sum()


def _smooth(x: np.ndarray, fps: float, seconds: float) -> np.ndarray:
    width = min(int(seconds * fps), (len(x) - 1) // 2)  # "same" convolution must not outgrow x
    if width < 1:
        return x.astype(np.float64)
    kernel = np.hanning(2 * width + 1)
    return np.convolve(x, kernel / kernel.sum(), mode="same")


def blink_curve(n: int, fps: float, pauses: list[float], rng: np.random.Generator, rate_per_s: float = 0.28,
                blink_free: np.ndarray | None = None) -> np.ndarray:
    """0..1 eyelid closure: blinks about every 3.5 s (at least 1.2 s apart), drawn towards ``pauses`` (s). A blink
    that would touch a frame where ``blink_free`` (n,) is True is left out (the draws stay the same)."""
    duration = n / fps
    curve = np.zeros(n)
    t = rng.exponential(1.0 / rate_per_s) * 0.5
    while t < duration:
        near = [p for p in pauses if abs(p - t) < 0.6]
        start = near[0] if near and rng.random() < 0.7 else t
        length = rng.uniform(0.18, 0.28)
        times = np.arange(n) / fps - start
        close, open_ = 0.35 * length, 0.65 * length  # lids fall faster than they rise
        shape = np.where(times < close, times / close, 1.0 - (times - close) / open_)
        blink = np.clip(np.where((times >= 0) & (times <= length), shape, 0.0), 0.0, 1.0)
        if blink_free is None or not blink_free[blink > 0.0].any():
            curve = np.maximum(curve, blink)
        t = start + max(1.2, rng.exponential(1.0 / rate_per_s))
    return curve


def speech_pauses(phonemes: list[PhonemeEvent]) -> list[float]:
    """Centres of the pauses (silences of at least 0.15 s) in a phoneme sequence."""
    return [0.5 * (p.start + p.end) for p in phonemes if p.mouth_class == REST and p.end - p.start > 0.15]


def energy_pauses(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> list[float]:
    """Centres of the quiet stretches (≥ 0.15 s, 25 dB under the speech level) when no phonemes are known."""
    energy = frame_energy(audio, sample_rate, fps, n_frames)
    quiet = energy < np.percentile(energy, 80) - 25
    edges = np.flatnonzero(np.diff(np.r_[0, quiet.astype(int), 0]))
    return [0.5 * (a + b) / fps for a, b in zip(edges[::2], edges[1::2]) if (b - a) / fps >= 0.15]


def add_prosody(units: np.ndarray, unit_names: tuple[str, ...], audio: np.ndarray, sample_rate: int, fps: float,
                rng: np.random.Generator, pauses: list[float], head_motion: float = 1.0, blinks: bool = True,
                blink_free: np.ndarray | None = None) -> np.ndarray:
    """Brows on pitch accents and blinks (in ``units``, in place; none touching a frame where ``blink_free`` is True,
    e.g. where a reference video has a say); returns the head rotation (T, 3)."""
    n = len(units)
    energy = frame_energy(audio, sample_rate, fps, n)
    pitch = frame_pitch(audio, sample_rate, fps, n)
    speaking = energy > np.percentile(energy, 60) - 25
    loud = np.clip((_smooth(energy, fps, 0.3) - np.median(energy[speaking]) if speaking.any() else 0.0) / 10.0, -1.0, 1.0)
    voiced = pitch > 0
    pitch_z = np.zeros(n)
    if voiced.sum() > 3:
        log_f0 = np.log(np.where(voiced, pitch, 1.0))
        pitch_z = np.where(voiced, (log_f0 - log_f0[voiced].mean()) / (log_f0[voiced].std() + 1e-6), 0.0)
    accent = np.clip(_smooth(pitch_z, fps, 0.25), 0.0, 2.0) / 2.0
    index = {name: i for i, name in enumerate(unit_names)}
    units[:, index["browInnerUp"]] = np.maximum(units[:, index["browInnerUp"]], 0.35 * accent)
    for side in ("Left", "Right"):
        units[:, index[f"browOuterUp{side}"]] = np.maximum(units[:, index[f"browOuterUp{side}"]], 0.25 * accent)
    if blinks:
        blink = blink_curve(n, fps, pauses, rng, blink_free=blink_free)
        for side in ("Left", "Right"):
            units[:, index[f"eyeBlink{side}"]] = np.maximum(units[:, index[f"eyeBlink{side}"]], blink)
    return head_motion * np.stack([
        0.025 * _smooth(loud, fps, 0.4) + _slow_noise(n, fps, rng, 0.02),  # nods with emphasis
        _slow_noise(n, fps, rng, 0.04),  # turns
        _slow_noise(n, fps, rng, 0.015),  # tilts
    ], axis=1)
