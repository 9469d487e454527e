"""The mouth's channels on the default head and the bilabial seal: which ARKit units shape the mouth, the closure
curve of a phone sequence's p/b/m, and sealing the lips where that closure is up. Shared by generating (the speech
model's seal, transcript mode, fusion's mouth mask) and by the synthetic corpus."""

from __future__ import annotations

import numpy as np

from .phonemes import BILABIAL, PhonemeEvent

SEAL_JAW = 0.0  # jaw angle at a full bilabial closure
SEAL_UNITS = {"mouthClose": 0.03, "mouthPressLeft": 0.35, "mouthPressRight": 0.35}  # seals the default head's lips at SEAL_JAW (gap 0.3 mm)
MOUTH_UNIT_PREFIXES = ("mouth", "jaw", "tongue", "cheekPuff")
CLOSURE_HALF_WIDTH = 0.7  # of the phoneme's half-duration: the seal holds over the middle of the p/b/m


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
