"""Forced alignment of a known English text to speech: words and phones with their times.

PocketSphinx 5 (an optional dependency, the ``align`` extra) ships an acoustic model trained on real
English speech and the CMU pronouncing dictionary inside its wheel, so alignment runs offline. Its phones
are ARPAbet; they come back as :class:`~lattice_talk.core.phonemes.PhonemeEvent` (lower case, ``sil``
for silence) so the metrics and the articulation read them like the synthetic corpus's phonemes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..phonemes import PHONEME_CLASS, SILENCE, PhonemeEvent
from ..errors import LatticeTalkError

ALIGN_RATE = 16000  # PocketSphinx's en-us acoustic model
FRAME_SECONDS = 0.01  # its frame step
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class AlignmentError(LatticeTalkError):
    """A transcript could not be aligned: the aligner is missing, or words are not in its dictionary."""


@dataclass(frozen=True)
class AlignedWord:
    word: str
    start: float  # seconds
    end: float
    phones: tuple[PhonemeEvent, ...]


def transcript_words(text: str) -> list[str]:
    """Lower-case words of a transcript; digits are spelled out one by one, punctuation dropped."""
    text = re.sub(r"\d", lambda m: f" {_DIGITS[int(m.group())]} ", text.lower().replace("’", "'"))
    return _WORD.findall(text)


def _decoder():
    try:
        from pocketsphinx import Decoder
    except ImportError as exc:
        raise AlignmentError("transcript alignment needs PocketSphinx: pip install -c constraints.txt -e '.[align]' "
                             "(in Blender: Preferences › Add-ons › LatticeTalk › Install Dependencies)") from exc
    return Decoder(lm=None, samprate=ALIGN_RATE, loglevel="FATAL")


def align_words(samples: np.ndarray, sample_rate: int, text: str) -> list[AlignedWord]:
    """Align ``text`` to mono float ``samples`` at ``sample_rate`` (16 kHz expected): the words with their
    phones, silences left out. Raises :class:`AlignmentError` naming the words it cannot pronounce, or when
    the text and the audio do not match well enough to align."""
    if sample_rate != ALIGN_RATE:
        raise AlignmentError(f"alignment needs {ALIGN_RATE} Hz audio, got {sample_rate} Hz (load it with load_audio)")
    words = transcript_words(text)
    if not words:
        raise AlignmentError("the transcript has no words to align")
    decoder = _decoder()
    missing = [w for w in dict.fromkeys(words) if decoder.lookup_word(w) is None]
    if missing:
        raise AlignmentError(f"the aligner's English dictionary does not know: {', '.join(missing)}; spell them as "
                             "they sound in English words, or leave the transcript out to use the audio alone")
    pcm = (np.clip(np.asarray(samples, np.float32), -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()
    # 1. Recognise once with the text as the only grammar, 2. then align the phones inside that result.
    mismatch = AlignmentError("the transcript does not match the audio (no alignment found): check that it is the "
                              "text of this recording")
    decoder.set_align_text(" ".join(words))
    try:
        for second_pass in (False, True):
            if second_pass:
                decoder.set_alignment()
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()  # raises RuntimeError when the search found no path through the text
            if not second_pass and decoder.hyp() is None:  # (hyp() of the phone-alignment pass crashes)
                raise mismatch
    except RuntimeError as exc:
        raise mismatch from exc
    out = []
    for word in decoder.get_alignment():
        if word.name.startswith("<") or word.name.startswith("["):  # <sil>, <s>, </s>, [NOISE]
            continue
        phones = tuple(_phone(p.name, p.start, p.duration) for p in word)
        name = re.sub(r"\(\d+\)$", "", word.name)  # alternative pronunciations are named word(2)
        out.append(AlignedWord(name, word.start * FRAME_SECONDS, (word.start + word.duration) * FRAME_SECONDS,
                               tuple(p for p in phones if p is not None)))
    return out


def _phone(label: str, start: int, duration: int) -> PhonemeEvent | None:
    label = label.lower()
    if duration <= 0:
        return None
    return PhonemeEvent(label if label in PHONEME_CLASS else SILENCE, start * FRAME_SECONDS, (start + duration) * FRAME_SECONDS)


def phone_events(words: list[AlignedWord]) -> list[PhonemeEvent]:
    """Every aligned phone in time order."""
    return [p for w in words for p in w.phones]
