"""Phonemes (+ the audio's prosody) → articulatory targets on the default head, with coarticulation.

Each mouth class has a target: ARKit-unit weights plus a jaw-bone angle (rotation about +x). Targets are
blended over time with Cohen–Massaro dominance functions — every phoneme pulls the face towards its
target with a strength that peaks at its centre and decays exponentially, faster after it (carry-over)
than before it (anticipation), so lips round ahead of a rounded vowel and the jaw does not snap.

Bilabial closure is enforced, not left to the blend: a closure channel peaks at the centre of every
p/b/m and, where it is high, shuts the jaw and adds the ``mouthClose``/``mouthPress`` needed to seal
the lips (measured on the head: inner-lip gap < 1 mm). Silence pulls towards a closed-mouth rest.

Beyond the mouth (``core.prosody``): blinks (random, preferring pauses), brows and small head motion from the audio's
energy and pitch. Everything is deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..mouth import closure_curve, seal_lips
from ..prosody import add_prosody, speech_pauses
from ..phonemes import (
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
PAUSE_SECONDS, PAUSE_STRENGTH = 0.15, 4.0  # a real pause closes the mouth, a gap between words barely does


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
