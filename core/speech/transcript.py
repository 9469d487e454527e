"""Transcript mode: the line's words, aligned to its audio, time the lip closures of p, b and m.

The decoder hears most bilabials, but a closure it misses is the error viewers notice first. With the words
known, forced alignment (:mod:`.alignment`) gives each p/b/m's time, and the lips are sealed there the way the
decoder's own closure channel seals them (``core.mouth.seal_lips``); timing and intensity of
everything else still come from the audio. Words the aligner cannot use leave the take to the audio alone,
and the report says which and why."""

from __future__ import annotations

import numpy as np

from ..audio import Audio
from .alignment import AlignmentError, align_words, phone_events


def seal_transcript_bilabials(units: np.ndarray, jaw: np.ndarray, unit_names: tuple[str, ...], audio: Audio,
                              transcript: str, fps: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Units and jaw with the aligned p/b/m sealed, and a report for the take's provenance."""
    from ..mouth import closure_curve, seal_lips
    from ..phonemes import BILABIALS

    report: dict = {"text": transcript}
    try:
        words = align_words(audio.samples, audio.sample_rate, transcript)
    except AlignmentError as exc:
        report["error"] = f"{exc}; the take was made from the audio alone"
        return units, jaw, report
    phones = phone_events(words)
    closure = closure_curve(phones, np.arange(len(jaw)) / fps, fps)
    units, jaw = seal_lips(units, jaw, closure, unit_names)
    report["words"] = [[w.word, round(w.start, 3), round(w.end, 3)] for w in words]
    report["bilabials"] = sum(p.phoneme in BILABIALS for p in phones)
    return units, jaw, report
