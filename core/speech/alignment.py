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
_NOT_WORDS = ("<", "[")  # a decoder's <sil>, <s>, </s>, [NOISE], [SPEECH]
CHUNK_WORDS = 8  # recognised words aligned together (see align_in_chunks)
CHUNK_MARGIN_SECONDS = 0.1  # audio kept either side of a chunk's recognised words
RETRY_PAD_SECONDS = 0.2  # silence put around audio whose alignment failed, for the second try
MIN_HEARD_SHARE = 0.4  # of a transcript's words the recogniser must hear as written before it is aligned in chunks
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


class AlignmentError(LatticeTalkError):
    """A transcript could not be aligned: the aligner is missing, or words are not in its dictionary."""


class NoAlignmentPath(AlignmentError):
    """The aligner found no path through the transcript's words in the audio (its words are all known)."""


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


def _decoder(**options):
    """A PocketSphinx decoder on its bundled English model (``lm=None``: no language model, for alignment)."""
    try:
        from pocketsphinx import Decoder
    except ImportError as exc:
        raise AlignmentError("transcript alignment needs PocketSphinx: pip install -c constraints.txt -e '.[align]' "
                             "(in Blender: Preferences › Add-ons › LatticeTalk › Install Dependencies)") from exc
    return Decoder(samprate=ALIGN_RATE, loglevel="FATAL", **options)


def _pcm(samples: np.ndarray) -> bytes:
    return (np.clip(np.asarray(samples, np.float32), -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()


def align_words(samples: np.ndarray, sample_rate: int, text: str) -> list[AlignedWord]:
    """Align ``text`` to mono float ``samples`` at ``sample_rate`` (16 kHz expected): the words with their
    phones, silences left out. Raises :class:`AlignmentError` naming the words it cannot pronounce, or when
    the text and the audio do not match well enough to align."""
    if sample_rate != ALIGN_RATE:
        raise AlignmentError(f"alignment needs {ALIGN_RATE} Hz audio, got {sample_rate} Hz (load it with load_audio)")
    words = transcript_words(text)
    if not words:
        raise AlignmentError("the transcript has no words to align")
    decoder = _decoder(lm=None)
    missing = [w for w in dict.fromkeys(words) if decoder.lookup_word(w) is None]
    if missing:
        raise AlignmentError(f"the aligner's English dictionary does not know: {', '.join(missing)}; spell them as "
                             "they sound in English words, or leave the transcript out to use the audio alone")
    try:
        return _align_pass(decoder, samples, words, 0)
    except AlignmentError:
        # The search sometimes finds no path through words that are there (7 of 52 GRID sentences of one held-out
        # speaker); with silence around the audio it found one for all seven.
        silence = np.zeros(int(RETRY_PAD_SECONDS * ALIGN_RATE), np.float32)
        lead_frames = int(round(RETRY_PAD_SECONDS / FRAME_SECONDS))
        return _align_pass(decoder, np.concatenate([silence, samples, silence]), words, lead_frames)


def _align_pass(decoder, samples: np.ndarray, words: list[str], lead_frames: int) -> list[AlignedWord]:
    """One alignment of ``words`` to ``samples`` whose first ``lead_frames`` are padding (taken off the times)."""
    pcm = _pcm(samples)
    # 1. Recognise once with the text as the only grammar, 2. then align the phones inside that result.
    mismatch = NoAlignmentPath("the transcript does not match the audio (no alignment found): check that it is the "
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
        if word.name.startswith(_NOT_WORDS):
            continue
        phones = tuple(_phone(p.name, p.start - lead_frames, p.duration) for p in word)
        start = max(word.start - lead_frames, 0)
        out.append(AlignedWord(_dictionary_word(word.name), start * FRAME_SECONDS,
                               (word.start - lead_frames + word.duration) * FRAME_SECONDS,
                               tuple(p for p in phones if p is not None)))
    return out


def _dictionary_word(name: str) -> str:
    """A decoder's word without its pronunciation variant: alternative pronunciations are named word(2)."""
    return re.sub(r"\(\d+\)$", "", name)


def _phone(label: str, start: int, duration: int) -> PhonemeEvent | None:
    label = label.lower()
    if start < 0:  # a phone begun in the padding (_align_pass) starts with the audio
        start, duration = 0, duration + start
    if duration <= 0:
        return None
    return PhonemeEvent(label if label in PHONEME_CLASS else SILENCE, start * FRAME_SECONDS, (start + duration) * FRAME_SECONDS)


def phone_events(words: list[AlignedWord]) -> list[PhonemeEvent]:
    """Every aligned phone in time order."""
    return [p for w in words for p in w.phones]


def recognize_words(samples: np.ndarray, sample_rate: int) -> list[tuple[str, float, float]]:
    """The words PocketSphinx's English recogniser (its bundled language model) hears, with start and end times in
    seconds; silences and fillers left out."""
    if sample_rate != ALIGN_RATE:
        raise AlignmentError(f"recognition needs {ALIGN_RATE} Hz audio, got {sample_rate} Hz (load it with load_audio)")
    # PocketSphinx's default search. One forward pass with narrower beams is 36 % faster on the real dev split with
    # the same p/b/m (120/127) and 5 % more closures where the lips were open, but on synthetic voices (the tests'
    # flite lines) it loses a third of the bilabials it hears: the full search is the robust one.
    decoder = _decoder()
    decoder.start_utt()
    decoder.process_raw(_pcm(samples), full_utt=True)
    decoder.end_utt()
    return [(_dictionary_word(s.word), s.start_frame * FRAME_SECONDS, (s.end_frame + 1) * FRAME_SECONDS)
            for s in decoder.seg() if not s.word.startswith(_NOT_WORDS)]


def align_in_chunks(samples: np.ndarray, sample_rate: int, timed_words: list[tuple[str, float, float]],
                    chunk_words: int = CHUNK_WORDS) -> tuple[list[AlignedWord], list[str]]:
    """Align words whose rough times are known (a recogniser's) a few at a time, each chunk on its own stretch of
    audio: one alignment over a long line fails outright (PocketSphinx finds no path through 20–30 s of real
    speech with its own hypothesis), a chunk that fails loses only its words. → (aligned words, unaligned words)."""
    aligned, unaligned = [], []
    todo = [timed_words[first:first + chunk_words] for first in range(0, len(timed_words), chunk_words)][::-1]
    while todo:
        chunk = todo.pop()
        start = max(chunk[0][1] - CHUNK_MARGIN_SECONDS, 0.0)
        end = chunk[-1][2] + CHUNK_MARGIN_SECONDS
        piece = samples[int(start * sample_rate):int(end * sample_rate)]
        try:
            words = align_words(piece, sample_rate, " ".join(word for word, _, _ in chunk))
        except AlignmentError:
            if len(chunk) > 1:  # a misheard word spoils only its half: try each half alone
                half = len(chunk) // 2
                todo += [chunk[half:], chunk[:half]]
            else:
                unaligned.append(chunk[0][0])
            continue
        aligned += [AlignedWord(w.word, w.start + start, w.end + start,
                                tuple(PhonemeEvent(p.phoneme, p.start + start, p.end + start) for p in w.phones))
                    for w in words]
    return sorted(aligned, key=lambda w: w.start), unaligned  # neighbouring chunks' margins overlap


def align_transcript(samples: np.ndarray, sample_rate: int, text: str) -> tuple[list[AlignedWord], list[str]]:
    """``text`` aligned to ``samples`` → (aligned words, words left out): in one pass (:func:`align_words`), or, where
    that finds no path (PocketSphinx fails on most real lines over ~30 s even with their true words), a few words at a
    time on their own stretch of audio (:func:`align_in_chunks`), each word's stretch found by
    :func:`anchored_words`. Raises :class:`AlignmentError` for words the dictionary lacks, as ``align_words`` does."""
    try:
        return align_words(samples, sample_rate, text), []
    except NoAlignmentPath as exc:  # (unknown words or an empty text still raise as they are)
        mismatch = exc
    timed, heard = anchored_words(samples, sample_rate, transcript_words(text))
    if heard < MIN_HEARD_SHARE:  # not this recording's words (a recogniser hears most of a true transcript)
        raise NoAlignmentPath(f"{mismatch} (the recogniser heard {100 * heard:.0f} % of its words)")
    return align_in_chunks(samples, sample_rate, timed)


def anchored_words(samples: np.ndarray, sample_rate: int,
                   words: list[str]) -> tuple[list[tuple[str, float, float]], float]:
    """Rough times of ``words`` in ``samples``, and the share of them the recogniser heard as written: each word paired
    with a word the recogniser heard — the same word or the one heard in its place, by the fewest-edits alignment of
    the two sequences — takes its times; the rest share the time between their paired neighbours evenly, by length."""
    heard = recognize_words(samples, sample_rate)
    times: list[tuple[float, float] | None] = [None] * len(words)
    same = 0
    for i, j in _paired([word for word, _, _ in heard], words):
        times[j] = heard[i][1:]
        same += heard[i][0] == words[j]
    duration = len(samples) / sample_rate
    k = 0
    while k < len(words):
        if times[k] is not None:
            k += 1
            continue
        end = next((j for j in range(k, len(words)) if times[j] is not None), len(words))
        lo = times[k - 1][1] if k > 0 else 0.0
        hi = times[end][0] if end < len(words) else duration
        lengths = np.cumsum([0] + [len(w) + 1 for w in words[k:end]])
        edges = lo + (hi - lo) * lengths / lengths[-1]
        for j in range(k, end):
            times[j] = (float(edges[j - k]), float(edges[j - k + 1]))
        k = end
    return [(word, start, end) for word, (start, end) in zip(words, times)], same / max(1, len(words))


def _paired(a: list[str], b: list[str]) -> list[tuple[int, int]]:
    """The (i, j) pairs of the fewest-edits alignment of ``a`` to ``b`` (Levenshtein over words: a word kept or
    replaced pairs; one inserted or dropped does not), in order. Ties prefer keeping the pairs."""
    n, m = len(a), len(b)
    cost = np.zeros((n + 1, m + 1), np.int32)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i, j] = min(cost[i - 1, j - 1] + (a[i - 1] != b[j - 1]), cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    pairs, i, j = [], n, m
    while i > 0 and j > 0:
        if cost[i, j] == cost[i - 1, j - 1] + (a[i - 1] != b[j - 1]):
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]
