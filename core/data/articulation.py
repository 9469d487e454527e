"""Phonemes (+ the audio's prosody) → articulatory targets on the default head, with coarticulation.

Each mouth class has a target: ARKit-unit weights plus a jaw-bone angle (rotation about +x). Targets are
blended over time with Cohen–Massaro dominance functions — every phoneme pulls the face towards its
target with a strength that peaks at its centre and decays exponentially, faster after it (carry-over)
than before it (anticipation), so lips round ahead of a rounded vowel and the jaw does not snap.

Bilabial closure is enforced, not left to the blend: a closure channel peaks at the centre of every
p/b/m and, where it is high, shuts the jaw and adds the ``mouthClose``/``mouthPress`` needed to seal
the lips (measured on the head: inner-lip gap < 1 mm). Silence pulls towards a closed-mouth rest.

Beyond the mouth: blinks (random, preferring pauses), brows and small head motion from the audio's
energy and pitch. Everything is deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .phonemes import (
    ALVEOLAR, BILABIAL, DENTAL, GLIDE_W, GLIDE_Y, GLOTTAL, LABIODENTAL, MID_VOWEL, OPEN_VOWEL, POSTALVEOLAR,
    REST, RHOTIC, ROUNDED_VOWEL, SPREAD_VOWEL, VELAR, PhonemeEvent,
)


@dataclass(frozen=True)
class MouthTarget:
    units: dict[str, float]
    jaw: float  # rad, jaw bone about +x (opens)
    strength: float  # dominance peak α
    anticipation: float = 12.0  # 1/s, decay before the centre
    carryover: float = 16.0  # 1/s, decay after the centre


def _both(name: str, value: float) -> dict[str, float]:
    return {f"{name}Left": value, f"{name}Right": value}


MOUTH_TARGETS: dict[str, MouthTarget] = {
    REST: MouthTarget({}, 0.0, 0.6, 8.0, 8.0),  # short gaps inside phrases; pauses get PAUSE_STRENGTH
    BILABIAL: MouthTarget(_both("mouthPress", 0.3), 0.0, 1.2, 14.0, 18.0),  # the seal itself is enforced below
    LABIODENTAL: MouthTarget({"mouthRollLower": 0.55, **_both("mouthUpperUp", 0.12)}, 0.04, 2.5, 14.0, 18.0),
    DENTAL: MouthTarget({"tongueOut": 0.25}, 0.07, 1.2),
    ALVEOLAR: MouthTarget(_both("mouthStretch", 0.1), 0.06, 0.7),
    POSTALVEOLAR: MouthTarget({"mouthFunnel": 0.45, "mouthPucker": 0.2}, 0.07, 1.5),
    VELAR: MouthTarget({}, 0.09, 0.5),
    RHOTIC: MouthTarget({"mouthPucker": 0.35, "mouthFunnel": 0.15}, 0.06, 1.0),
    GLIDE_W: MouthTarget({"mouthPucker": 0.8, "mouthFunnel": 0.3}, 0.04, 2.0, 10.0, 14.0),
    GLIDE_Y: MouthTarget(_both("mouthStretch", 0.25), 0.05, 0.8),
    GLOTTAL: MouthTarget({}, 0.12, 0.2),
    OPEN_VOWEL: MouthTarget({**_both("mouthLowerDown", 0.25), **_both("mouthUpperUp", 0.1)}, 0.28, 1.0),
    MID_VOWEL: MouthTarget({**_both("mouthLowerDown", 0.12), **_both("mouthStretch", 0.12)}, 0.17, 1.0),
    SPREAD_VOWEL: MouthTarget({**_both("mouthSmile", 0.3), **_both("mouthStretch", 0.3)}, 0.09, 1.0),
    ROUNDED_VOWEL: MouthTarget({"mouthFunnel": 0.55, "mouthPucker": 0.5}, 0.14, 1.3, 10.0, 14.0),
}
SEAL_JAW = 0.0  # jaw angle at a full bilabial closure
SEAL_UNITS = {"mouthClose": 0.03, **_both("mouthPress", 0.35)}  # seals the default head's lips at SEAL_JAW (gap 0.3 mm)
PAUSE_SECONDS, PAUSE_STRENGTH = 0.15, 4.0  # a real pause closes the mouth, a gap between words barely does
MOUTH_UNIT_PREFIXES = ("mouth", "jaw", "tongue", "cheekPuff")
CLOSURE_HALF_WIDTH = 0.7  # of the phoneme's half-duration: the seal holds over the middle of the p/b/m


@dataclass
class Articulation:
    """Per-frame parameters of the default head: ARKit units, jaw bone angle, head rotation."""

    fps: float
    unit_names: tuple[str, ...]
    units: np.ndarray  # (T, U) 0..1
    jaw: np.ndarray  # (T,) rad
    head_rotation: np.ndarray  # (T, 3) axis-angle
    closure: np.ndarray  # (T,) 0..1, the enforced bilabial seal
    meta: dict = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.jaw)

    def pose(self) -> np.ndarray:
        """(T, 5, 3) FLAME-order joint rotations: root = head rotation, jaw about +x."""
        pose = np.zeros((self.n_frames, 5, 3), np.float32)
        pose[:, 0] = self.head_rotation
        pose[:, 2, 0] = self.jaw
        return pose


def _frame_times(duration: float, fps: float) -> np.ndarray:
    return np.arange(max(1, int(np.ceil(duration * fps)))) / fps


def mouth_curves(phonemes: list[PhonemeEvent], unit_names: tuple[str, ...], fps: float, duration: float,
                 effort: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dominance-blended units (T, U) and jaw (T,), and the closure channel (T,), before sealing."""
    times = _frame_times(duration, fps)
    index = {name: i for i, name in enumerate(unit_names)}
    n = len(phonemes)
    targets = np.zeros((n, len(unit_names) + 1))
    dominance = np.zeros((n, len(times)))
    for k, event in enumerate(phonemes):
        target = MOUTH_TARGETS[event.mouth_class]
        strength = target.strength
        if event.mouth_class == REST and event.end - event.start >= PAUSE_SECONDS:
            strength = PAUSE_STRENGTH
        for name, value in target.units.items():
            targets[k, index[name]] = value
        targets[k, -1] = target.jaw
        centre = 0.5 * (event.start + event.end)
        tau = times - centre
        rate = np.where(tau < 0, target.anticipation, target.carryover)
        # Long silences hold the rest pose over their whole span, not only around the centre.
        if event.mouth_class == REST:
            tau = np.where((times > event.start) & (times < event.end), 0.0, np.minimum(abs(times - event.start), abs(times - event.end)))
        dominance[k] = strength * np.exp(-rate * np.abs(tau))
    weights = dominance / np.maximum(dominance.sum(0, keepdims=True), 1e-9)
    blended = weights.T @ targets
    units = np.clip(blended[:, :-1] * effort, 0.0, 1.0)
    jaw = blended[:, -1] * effort
    closure = closure_curve(phonemes, times, fps)
    return units, jaw, closure


def closure_curve(phonemes: list[PhonemeEvent], times: np.ndarray, fps: float) -> np.ndarray:
    """0..1 per frame: 1 over the middle of every p/b/m (at least one frame), ramping to 0 at its edges."""
    closure = np.zeros(len(times))
    for event in phonemes:
        if event.mouth_class == BILABIAL:
            centre, half = 0.5 * (event.start + event.end), 0.5 * (event.end - event.start)
            width = max(CLOSURE_HALF_WIDTH * half, 0.5 / fps)
            bump = np.clip(1.0 - (np.abs(times - centre) - width) / max(half, 1.0 / fps), 0.0, 1.0)
            closure = np.maximum(closure, bump)
    return closure


def mouth_unit_mask(unit_names: tuple[str, ...]) -> np.ndarray:
    """Which units shape the mouth (lips, jaw, tongue, cheeks) rather than eyes or brows."""
    return np.array([name.startswith(MOUTH_UNIT_PREFIXES) for name in unit_names])


def seal_lips(units: np.ndarray, jaw: np.ndarray, closure: np.ndarray, unit_names: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Where the closure channel is up, shut the jaw and replace every other mouth shape by the seal
    (see SEAL_UNITS): a neighbour's lip roll or rounding must not keep a p/b/m open."""
    c = closure[:, None]
    jaw = jaw * (1.0 - closure) + SEAL_JAW * closure
    mouth = mouth_unit_mask(unit_names)
    seal = np.array([SEAL_UNITS.get(name, 0.0) for name in unit_names])
    sealed = np.where(mouth[None], units * (1.0 - c) + seal[None] * c, units)
    return sealed, jaw


# ------------------------------------------------------------------------------------- prosody


def frame_energy(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """RMS level per video frame, in dB (−100 for digital silence)."""
    hop = sample_rate / fps
    out = np.full(n_frames, -100.0)
    for i in range(n_frames):
        chunk = audio[int(i * hop):int((i + 1) * hop)]
        if len(chunk):
            out[i] = 20 * np.log10(max(float(np.sqrt(np.mean(chunk ** 2))), 1e-5))
    return out


PITCH_BLOCK = 1024  # frames per FFT block: bounded memory on long takes (10 min at 30 fps in one go peaked at ~1 GB)


def frame_pitch(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int, fmin: float = 70.0, fmax: float = 400.0) -> np.ndarray:
    """F0 per frame in Hz from the normalised autocorrelation (0 where unvoiced)."""
    win = int(0.04 * sample_rate)
    hop = sample_rate / fps
    lags = np.arange(int(sample_rate / fmax), int(sample_rate / fmin))
    f0 = np.zeros(n_frames)
    starts = (np.arange(n_frames) * hop).astype(int)
    for first in range(0, n_frames, PITCH_BLOCK):
        block = starts[first:first + PITCH_BLOCK]
        frames = np.stack([np.pad(audio[s:s + win], (0, max(0, win - len(audio[s:s + win])))) for s in block])
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


def articulate(phonemes: list[PhonemeEvent], unit_names: tuple[str, ...], fps: float, audio: np.ndarray,
               sample_rate: int, seed: int = 0, head_motion: float = 1.0, blinks: bool = True) -> Articulation:
    """The default head's parameters for an utterance: mouth from phonemes, the rest from prosody."""
    rng = np.random.default_rng(seed)
    duration = max(len(audio) / sample_rate, phonemes[-1].end if phonemes else 0.0)
    effort = float(rng.uniform(0.85, 1.15))  # speakers articulate more or less
    units, jaw, closure = mouth_curves(phonemes, unit_names, fps, duration, effort)
    units, jaw = seal_lips(units, jaw, closure, unit_names)
    head_rotation = add_prosody(units, unit_names, audio, sample_rate, fps, rng, speech_pauses(phonemes), head_motion, blinks)
    return Articulation(fps=fps, unit_names=unit_names, units=units.astype(np.float32), jaw=jaw.astype(np.float32),
                        head_rotation=head_rotation.astype(np.float32), closure=closure.astype(np.float32),
                        meta={"seed": seed, "effort": effort})
