"""One phoneme inventory for every synthesizer: ARPAbet (lower case) plus ``sil``, each with the mouth
class that drives the articulatory targets. espeak-ng and festival labels are mapped onto it."""

from __future__ import annotations

from dataclasses import dataclass

SILENCE = "sil"

# Mouth classes (visemes by articulation, not by letter).
REST, BILABIAL, LABIODENTAL, DENTAL, ALVEOLAR, POSTALVEOLAR, VELAR, RHOTIC, GLIDE_W, GLIDE_Y, GLOTTAL = (
    "rest", "bilabial", "labiodental", "dental", "alveolar", "postalveolar", "velar", "rhotic", "glide_w", "glide_y", "glottal")
OPEN_VOWEL, MID_VOWEL, SPREAD_VOWEL, ROUNDED_VOWEL = "open_vowel", "mid_vowel", "spread_vowel", "rounded_vowel"

PHONEME_CLASS: dict[str, str] = {
    SILENCE: REST,
    "p": BILABIAL, "b": BILABIAL, "m": BILABIAL,
    "f": LABIODENTAL, "v": LABIODENTAL,
    "th": DENTAL, "dh": DENTAL,
    "t": ALVEOLAR, "d": ALVEOLAR, "n": ALVEOLAR, "l": ALVEOLAR, "s": ALVEOLAR, "z": ALVEOLAR,
    "sh": POSTALVEOLAR, "zh": POSTALVEOLAR, "ch": POSTALVEOLAR, "jh": POSTALVEOLAR,
    "k": VELAR, "g": VELAR, "ng": VELAR,
    "r": RHOTIC, "w": GLIDE_W, "y": GLIDE_Y, "hh": GLOTTAL,
    "aa": OPEN_VOWEL, "ae": OPEN_VOWEL, "ah": OPEN_VOWEL, "ao": OPEN_VOWEL, "aw": OPEN_VOWEL, "ay": OPEN_VOWEL,
    "eh": MID_VOWEL, "er": MID_VOWEL, "ey": MID_VOWEL, "ax": MID_VOWEL,
    "iy": SPREAD_VOWEL, "ih": SPREAD_VOWEL,
    "uw": ROUNDED_VOWEL, "uh": ROUNDED_VOWEL, "ow": ROUNDED_VOWEL, "oy": ROUNDED_VOWEL,
}
MOUTH_CLASSES = (REST, BILABIAL, LABIODENTAL, DENTAL, ALVEOLAR, POSTALVEOLAR, VELAR, RHOTIC, GLIDE_W, GLIDE_Y, GLOTTAL,
                 OPEN_VOWEL, MID_VOWEL, SPREAD_VOWEL, ROUNDED_VOWEL)
BILABIALS = frozenset(p for p, c in PHONEME_CLASS.items() if c == BILABIAL)


@dataclass(frozen=True)
class PhonemeEvent:
    phoneme: str  # a key of PHONEME_CLASS
    start: float  # seconds from the start of the audio
    end: float

    def __post_init__(self) -> None:
        if self.phoneme not in PHONEME_CLASS:
            raise ValueError(f"unknown phoneme {self.phoneme!r}; map synthesizer labels onto PHONEME_CLASS first")
        if not self.end > self.start >= 0:
            raise ValueError(f"phoneme {self.phoneme!r} has start {self.start} and end {self.end}")

    @property
    def mouth_class(self) -> str:
        return PHONEME_CLASS[self.phoneme]
