"""espeak-ng through its C library (``libespeak-ng.so.1``) with ctypes; the CLI cannot do this.

Initialised with ``espeakINITIALIZE_PHONEME_EVENTS`` it reports a phoneme event per phoneme
(``espeak_EVENT.sample``, at its own 22,050 Hz), but places it *after* the phoneme's pre-pause: a stop's
event sits at the burst, 30–50 ms after its closure began, which is exactly when the lips of a p/b
open. espeak-ng's output hooks (``espeak_ng_SetOutputHooks``) are called once per generated sample
and once where each phoneme's synthesis begins, before its pre-pause; :func:`espeak_phoneme_starts`
combines the two reports (see there). Measured on the sentence list: the level drops within 5 ms of
a vowel→stop boundary placed this way, against 45 ms early with the events alone. The library keeps
state between calls (its pitch-flutter phase), so every call loads, initialises, terminates and
unloads it under one lock: each utterance is as deterministic as the first call of a new process.

espeak's mnemonics for English have an explicit table that covers everything it emits for the sentence
list; other languages use a shared table, then the label stripped of length/variant marks, then a
fallback (vowel-like → ``ax``, otherwise ``t``).
"""

from __future__ import annotations

import _ctypes
import contextlib
import ctypes
import ctypes.util
import functools
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import LatticeTalkError
from ..phonemes import SILENCE
from .tts_common import _INSTALL_HINT, Utterance, _finish

# --------------------------------------------------------------------------------------------------
# espeak-ng phone labels

# espeak-ng's English mnemonics (phsource/ph_english*) → ARPAbet. Every label espeak-ng 1.51 emits for
# SENTENCES with the English voices is here.
ESPEAK_EN: dict[str, str] = {
    # consonants
    "p": "p", "b": "b", "m": "m", "f": "f", "v": "v", "T": "th", "D": "dh",
    "t": "t", "d": "d", "n": "n", "l": "l", "s": "s", "z": "z",
    "t#": "t", "t2": "t", "t[": "t", "d#": "d", "d2": "d", "n-": "n", "l-": "l", "@L": "l", "l/": "l", "l#": "l",
    "S": "sh", "Z": "zh", "tS": "ch", "dZ": "jh",
    "k": "k", "g": "g", "N": "ng", "x": "k",
    "r": "r", "r-": "r", "*": "r", "w": "w", "w#": "w", "W": "w", "j": "y", ";": "y", "h": "hh", "?": "t",
    # vowels
    "a": "ae", "aa": "ae", "a#": "ax", "A:": "aa", "A@": "aa", "A": "aa", "0": "aa", "0#": "aa",
    "O:": "ao", "O@": "ao", "O": "ao", "O2": "ao", "o@": "ao",
    "V": "ah", "VR": "ah",
    "E": "eh", "e@": "eh", "e": "eh", "eI": "ey",
    "3:": "er", "3": "er",
    "@": "ax", "@-": "ax", "@2": "ax", "@5": "ax",
    "I": "ih", "I#": "ih", "I2": "ih", "IR": "ih",
    "i": "iy", "i:": "iy", "i@": "iy", "i@3": "iy",
    "u:": "uw", "u": "uw", "U": "uh", "U@": "uh",
    "oU": "ow", "o": "ow", "OI": "oy",
    "aI": "ay", "aI@": "ay", "aI2": "ay", "aI3": "ay", "aU": "aw", "aU@": "aw",
}

# Other languages share most mnemonics; the letter vowels are continental ("a" is open, "e" close-mid).
ESPEAK_SHARED: dict[str, str] = {
    **ESPEAK_EN,
    "a": "aa", "a:": "aa", "a-": "aa", "A~": "aa", "&": "ae",
    "e": "ey", "e:": "ey", "e-": "eh", "E:": "eh", "E~": "eh", "E2": "eh",
    "i": "iy", "i.": "iy", "I": "ih",
    "o": "ow", "o:": "ow", "O~": "ao",
    "u": "uw", "u:": "uw", "U": "uh",
    "y": "uw", "y:": "uw", "y-": "uw", "Y": "uh", "Y:": "uh", "2": "uh", "2:": "uh", "9": "uh", "W": "uh",
    "W~": "uh", "8": "ax", "@-": "ax",
    "OY": "oy", "aU": "aw", "aI": "ay",
    "R": "r", "r": "r", "**": "r", "R2": "r",
    "B": "b", "D": "dh", "Q": "g", "G": "g", "T": "th",
    "C": "hh", "x": "k", "X": "k", "h": "hh",
    "J": "n", "n^": "n", "l^": "l", "L": "l",
    "pF": "p", "ts": "t", "dz": "d", "ts.h": "ch", "z2": "z", "s2": "s", "tS;": "ch",
}

_ESPEAK_PAUSES = frozenset({"_", "_:", "_!", "_|", "_;", "_^", "_::", "_!!", "_^_", "__"})
_STRIP = re.compile(r"[:#\-~.^;!'\[\]/0-9]+$")
_VOWEL_START = re.compile(r"^[aeiouyAEIOUVY@0-9&W]")


def map_espeak_phoneme(label: str, english: bool = True) -> tuple[str, str]:
    """Map one espeak-ng phoneme mnemonic onto the inventory: ``(phoneme, how)``.

    ``how`` is ``"table"`` (a direct entry), ``"stripped"`` (found after removing length/variant marks)
    or ``"fallback"`` (unknown: vowel-like → ``ax``, otherwise ``t``). Pauses map to ``sil``."""
    if label in _ESPEAK_PAUSES or label.startswith("_"):
        return SILENCE, "table"
    table = ESPEAK_EN if english else ESPEAK_SHARED
    if label in table:
        return table[label], "table"
    stripped = _STRIP.sub("", label)
    if stripped and stripped in table:
        return table[stripped], "stripped"
    if stripped and stripped in ESPEAK_SHARED:
        return ESPEAK_SHARED[stripped], "stripped"
    return ("ax" if _VOWEL_START.match(label) else "t"), "fallback"


# --------------------------------------------------------------------------------------------------
# espeak-ng through ctypes (speak_lib.h)

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_INITIALIZE_DONT_EXIT = 0x8000
_EVENT_LIST_TERMINATED, _EVENT_PHONEME = 0, 7
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE, _PARAM_WORDGAP = 1, 2, 3, 4, 7
_ESPEAK_DEFAULT_WPM = 175
_ESPEAK_ERRORS = {-1: "EE_INTERNAL_ERROR", 1: "EE_BUFFER_FULL", 2: "EE_NOT_FOUND"}


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _EspeakEvent(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # sample index at the engine's rate, from the start of this synth call
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


class _EspeakVoice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_void_p),  # (priority byte, NUL-terminated name)*, then a 0 byte
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_PhoHook = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_int)
_SampleHook = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_short)


class _OutputHooks(ctypes.Structure):  # espeak_ng_OUTPUT_HOOKS (espeak_ng.h)
    _fields_ = [("outputPhoSymbol", _PhoHook), ("outputSilence", _SampleHook), ("outputVoiced", _SampleHook), ("outputUnvoiced", _SampleHook)]


_SynthCallback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_EspeakEvent))


def _bind(lib: ctypes.CDLL) -> None:
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Initialize.restype = ctypes.c_int
    lib.espeak_Terminate.restype = ctypes.c_int
    lib.espeak_SetSynthCallback.argtypes = [_SynthCallback]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByName.restype = ctypes.c_int
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_SetParameter.restype = ctypes.c_int
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
        ctypes.POINTER(ctypes.c_uint), ctypes.c_void_p,
    ]
    lib.espeak_Synth.restype = ctypes.c_int
    lib.espeak_Synchronize.restype = ctypes.c_int
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_EspeakVoice))
    lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
    lib.espeak_Info.restype = ctypes.c_char_p
    if hasattr(lib, "espeak_ng_SetOutputHooks"):
        lib.espeak_ng_SetOutputHooks.argtypes = [ctypes.POINTER(_OutputHooks)]


class _Espeak:
    """espeak-ng's library, used under one process-wide lock, with a fresh state for every call.

    The library keeps state between syntheses in static variables (the pitch "flutter" phase among them),
    so the same text spoken twice in one process comes out a few samples different each time. Every call
    therefore loads the library, initialises it, synthesises, terminates it and unloads it (``dlclose``),
    which costs about 2 ms and makes each call sound exactly like the first call of a new process."""

    _instance: _Espeak | None = None
    _instance_lock = threading.Lock()

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._chunks: list[bytes] = []
        self._events: list[tuple[int, str]] = []
        self._n_out = 0
        self._pho: list[tuple[int, str, int]] = []
        # ctypes callbacks, kept referenced for the life of the process
        self._callback = _SynthCallback(self._on_synth)
        self._hooks = _OutputHooks(_PhoHook(self._on_pho), _SampleHook(self._on_sample), _SampleHook(self._on_sample), _SampleHook(self._on_sample))
        self.name = ctypes.util.find_library("espeak-ng") or "libespeak-ng.so.1"
        with self.lock, self._session() as lib:
            data_path = ctypes.c_char_p()
            self.version = (lib.espeak_Info(ctypes.byref(data_path)) or b"").decode(errors="replace")
            self.data_path = (data_path.value or b"").decode(errors="replace")
            self.has_hooks = hasattr(lib, "espeak_ng_SetOutputHooks")
            self._voices = self._list_voices(lib)

    @classmethod
    def get(cls) -> _Espeak:
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    @contextlib.contextmanager
    def _session(self) -> Iterator[ctypes.CDLL]:
        """Load and initialise the library; terminate and unload it afterwards. Hold :attr:`lock`."""
        try:
            lib = ctypes.CDLL(self.name)
        except OSError as exc:
            raise LatticeTalkError(
                f"espeak-ng's library ({self.name}) cannot be loaded ({exc}): run `{_INSTALL_HINT['espeak-ng']}`"
            ) from exc
        try:
            _bind(lib)
            rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS | _INITIALIZE_DONT_EXIT)
            if rate <= 0:
                raise LatticeTalkError(
                    f"espeak-ng failed to initialise (code {rate}); its data (espeak-ng-data) may be missing: "
                    f"run `{_INSTALL_HINT['espeak-ng']}`"
                )
            self.sample_rate = int(rate)
            try:
                lib.espeak_SetSynthCallback(self._callback)
                if hasattr(lib, "espeak_ng_SetOutputHooks"):
                    lib.espeak_ng_SetOutputHooks(ctypes.byref(self._hooks))
                yield lib
            finally:
                lib.espeak_Terminate()  # stops its thread; then nothing runs library code any more
        finally:
            handle = lib._handle
            del lib
            dlclose = getattr(_ctypes, "dlclose", None)
            if dlclose is not None:
                dlclose(handle)

    def _on_synth(self, wav, n, events) -> int:  # noqa: ANN001 - ctypes callback
        try:
            if n > 0 and wav:
                self._chunks.append(ctypes.string_at(wav, n * 2))
            i = 0
            while events[i].type != _EVENT_LIST_TERMINATED:
                event = events[i]
                if event.type == _EVENT_PHONEME:
                    self._events.append((int(event.sample), event.id.string.decode("ascii", errors="replace")))
                i += 1
        except Exception:  # never let a Python exception unwind through C
            return 1
        return 0

    def _on_sample(self, value) -> int:  # noqa: ANN001 - ctypes callback, once per output sample
        self._n_out += 1
        return 0

    def _on_pho(self, code, kind) -> int:  # noqa: ANN001 - ctypes callback, at the start of each phoneme
        self._pho.append((self._n_out, (code or b"").decode("ascii", errors="replace"), int(kind)))
        return 0

    @staticmethod
    def _list_voices(lib: ctypes.CDLL) -> list[str]:
        names: set[str] = set()
        table = lib.espeak_ListVoices(None)
        i = 0
        while table[i]:
            langs = table[i].contents.languages
            if langs:
                raw = ctypes.string_at(langs, 256)
                # (priority byte, name, NUL) repeated; the list ends with a 0 priority byte
                pos = 0
                while pos < len(raw) and raw[pos] != 0:
                    end = raw.find(b"\0", pos + 1)
                    if end < 0:
                        break
                    names.add(raw[pos + 1 : end].decode("ascii", errors="replace"))
                    pos = end + 1
            i += 1
        return sorted(n for n in names if n and n.isprintable() and " " not in n)

    def voices(self) -> list[str]:
        return list(self._voices)

    def synth(self, text: str, voice: str, wpm: int, pitch: int) -> tuple[np.ndarray, list[tuple[int, str]], list[tuple[int, str, int]] | None]:
        """Samples (float32 at :attr:`sample_rate`), the phoneme events ``(sample, mnemonic)`` and, where the
        output hooks work, the hooks' phoneme alignment calls ``(sample, mnemonic, type)`` (else ``None``)."""
        data = text.encode("utf-8")
        buffer = ctypes.create_string_buffer(data)
        with self.lock, self._session() as lib:
            code = lib.espeak_SetVoiceByName(voice.encode("utf-8"))
            if code != 0:
                raise LatticeTalkError(
                    f"espeak-ng has no voice {voice!r} ({_ESPEAK_ERRORS.get(code, code)}); see list_voices('espeak-ng') "
                    "and list_espeak_variants()"
                )
            for param, value in ((_PARAM_RATE, wpm), (_PARAM_PITCH, pitch), (_PARAM_RANGE, 50), (_PARAM_VOLUME, 100), (_PARAM_WORDGAP, 0)):
                lib.espeak_SetParameter(param, value, 0)
            self._chunks, self._events, self._pho, self._n_out = [], [], [], 0
            try:
                code = lib.espeak_Synth(buffer, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
                if code != 0:
                    raise LatticeTalkError(f"espeak-ng failed to synthesise ({_ESPEAK_ERRORS.get(code, code)})")
                lib.espeak_Synchronize()
                pcm = np.frombuffer(b"".join(self._chunks), dtype=np.int16)
                events = list(self._events)
                # The hooks count every sample written; if the count disagrees, their positions cannot be trusted.
                starts = list(self._pho) if self.has_hooks and self._pho and self._n_out == pcm.shape[0] else None
            finally:
                self._chunks, self._events, self._pho, self._n_out = [], [], [], 0
        return pcm.astype(np.float32) / 32768.0, events, starts


@functools.lru_cache(maxsize=1)
def list_espeak_variants() -> list[str]:
    """The voice variants espeak-ng has here (``m1`` … ``f5``, ``klatt``, …), for ``"en-us+f3"``-style names."""
    root = Path(_Espeak.get().data_path) / "voices" / "!v"
    return sorted(p.name for p in root.iterdir() if p.is_file()) if root.is_dir() else []


_ESPEAK_VOWEL, _ESPEAK_LIQUID, _ESPEAK_NASAL = 2, 3, 8


def espeak_phoneme_starts(events: list[tuple[int, str]], hooks: list[tuple[int, str, int]]) -> list[tuple[int, str]]:
    """Where each of espeak-ng's phonemes starts, in samples, from its two position reports.

    ``events`` are the phoneme events ``(sample, mnemonic)``, one per phoneme. espeak-ng places an event
    *after* the phoneme's pre-pause — for a stop, after the closure silence, at the burst — and, for a
    vowel after a nasal or liquid, after the vowel's onset transition. ``hooks`` are the alignment calls
    ``(sample, mnemonic, type)`` of the output hooks, made before the pre-pause; espeak repeats one each
    time its command queue is full, so the last repeat before the phoneme's event is the real one.

    A phoneme starts at its alignment call, so a stop includes its closure — except a vowel after a nasal
    or liquid: espeak synthesises the consonant and the vowel onset as one sequence, its alignment call
    comes before the consonant's frames, and the event (after the onset, where the level rises) is used."""
    starts: list[tuple[int, str]] = []
    previous_event, previous_type = 0, -1
    k = 0
    for sample, label in events:
        best, kind = None, -1
        j = k
        while j < len(hooks) and hooks[j][0] <= sample:
            if hooks[j][1] == label and hooks[j][0] >= previous_event:
                best, kind, k = hooks[j][0], hooks[j][2], j + 1
            j += 1
        if kind == _ESPEAK_VOWEL and previous_type in (_ESPEAK_LIQUID, _ESPEAK_NASAL):
            best = sample
        starts.append((sample if best is None else best, label))
        previous_event, previous_type = sample, kind
    return starts


def _synth_espeak(text: str, voice: str, rate: float, pitch: float, meta: dict) -> Utterance:
    engine = _Espeak.get()
    wpm = int(min(max(round(_ESPEAK_DEFAULT_WPM * rate), 80), 450))
    pitch_param = int(min(max(round(50 * pitch), 0), 100))
    audio, events, starts = engine.synth(text, voice, wpm, pitch_param)
    if audio.size == 0:
        raise LatticeTalkError(f"espeak-ng produced no audio for {text!r} with voice {voice!r}")
    base, _, variant = voice.partition("+")
    english = base.lower().startswith("en")
    if starts is not None:
        timing, labelled = "output-hooks", espeak_phoneme_starts(events, starts)
    else:
        timing, labelled = "phoneme-events", events
    raw_events, how = [], []
    for sample, label in labelled:
        if not label or (label.startswith("(") and label.endswith(")")):  # "(en)": a language switch, not a sound
            continue
        phoneme, h = map_espeak_phoneme(label, english=english)
        how.append((label, h))
        raw_events.append((phoneme, sample / engine.sample_rate))
    meta.update(
        language=base, variant=variant, espeak_wpm=wpm, espeak_pitch=pitch_param, espeak_version=engine.version,
        espeak_timing=timing,
    )
    return _finish("espeak-ng", voice, text, audio, engine.sample_rate, raw_events, how, meta, starts=True)
