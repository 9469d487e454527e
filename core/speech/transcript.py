"""Transcript mode: the line's words, aligned to its audio, time the lip closures of p, b and m.

The decoder hears most bilabials, but a closure it misses is the error viewers notice first. With the words
known, forced alignment (:mod:`.alignment`) gives each p/b/m's time, and the lips are sealed there the way the
decoder's own closure channel seals them (``core.mouth.seal_lips``); timing and intensity of
everything else still come from the audio. A long line that will not align in one pass is aligned a few words at a
time, each on the stretch of audio where the recogniser heard it (:func:`~.alignment.align_transcript`). Words the aligner cannot use leave the take to the audio alone,
and the report says which and why.

Without a transcript, recognition mode (:func:`seal_recognized_bilabials`) asks PocketSphinx's English recogniser
for the words first and aligns them a few at a time: the recogniser gets many words wrong, but a p, b or m it
hears is usually a p, b or m (as Rhubarb Lip Sync relies on). It costs a recognition pass (~0.25–0.6 s per second
of speech on a 2-core CPU), so it is a choice, not the default."""

from __future__ import annotations

import numpy as np

from ..audio import Audio
from .alignment import AlignedWord, AlignmentError, align_in_chunks, align_transcript, phone_events, recognize_words


def seal_transcript_bilabials(units: np.ndarray, jaw: np.ndarray, unit_names: tuple[str, ...], audio: Audio,
                              transcript: str, fps: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Units and jaw with the aligned p/b/m sealed, and a report for the take's provenance."""
    report: dict = {"source": "given", "text": transcript}
    try:
        words, unaligned = align_transcript(audio.samples, audio.sample_rate, transcript)
    except AlignmentError as exc:
        report["error"] = f"{exc}; the take was made from the audio alone"
        return units, jaw, report
    if unaligned:
        report["unaligned"] = unaligned
    return _seal(units, jaw, unit_names, words, fps, report)


def seal_recognized_bilabials(units: np.ndarray, jaw: np.ndarray, unit_names: tuple[str, ...], audio: Audio,
                              fps: float) -> tuple[np.ndarray, np.ndarray, dict]:
    """Recognition mode: the recogniser's words, aligned in chunks, seal their p/b/m (see the module docstring)."""
    report: dict = {"source": "recognized"}
    try:
        heard = recognize_words(audio.samples, audio.sample_rate)
    except AlignmentError as exc:
        report["error"] = f"{exc}; the take was made from the audio alone"
        return units, jaw, report
    report["text"] = " ".join(word for word, _, _ in heard)
    words, unaligned = align_in_chunks(audio.samples, audio.sample_rate, heard)
    if unaligned:
        report["unaligned"] = unaligned
    return _seal(units, jaw, unit_names, words, fps, report)


def _seal(units: np.ndarray, jaw: np.ndarray, unit_names: tuple[str, ...], words: list[AlignedWord], fps: float,
          report: dict) -> tuple[np.ndarray, np.ndarray, dict]:
    from ..mouth import closure_curve, seal_lips
    from ..phonemes import BILABIALS

    phones = phone_events(words)
    closure = closure_curve(phones, np.arange(len(jaw)) / fps, fps)
    units, jaw = seal_lips(units, jaw, closure, unit_names)
    report["words"] = [[w.word, round(w.start, 3), round(w.end, 3)] for w in words]
    report["bilabials"] = sum(p.phoneme in BILABIALS for p in phones)
    return units, jaw, report
