"""flite with its statistical-parametric (clustergen) voices ``slt``, ``awb`` and ``rms``, and the diphone
voices ``kal``/``kal16``: ``-psdur`` prints every segment with its end time, the times the
waveform generator was driven by. Diphone waves stop at the last pitch mark, a little inside the
final pause; that pause is cut to the audio's end. ``awb_time`` (a limited-domain voice that can only
say the time) is left out.
"""

from __future__ import annotations

import functools
import re
import tempfile
import threading
from pathlib import Path

import numpy as np

from ..errors import LatticeTalkError
from .tts_common import _INSTALL_HINT, Utterance, _finish, _map_cmu, _read_wav, _run, _tail, median_f0

FLITE_EXCLUDED = frozenset({"awb_time"})  # limited domain: it can only say the time
# Voices whose F0 follows int_f0_target_mean (checked: rms ignores it, so it has rate control only).
FLITE_PITCH_VOICES = frozenset({"slt", "awb", "kal", "kal16"})


@functools.lru_cache(maxsize=1)
def _flite_voices() -> tuple[str, ...]:
    proc = _run("flite", ["flite", "-lv"])
    out = proc.stdout.split(":", 1)[-1] if ":" in proc.stdout else proc.stdout
    voices = tuple(sorted(v for v in out.split() if v not in FLITE_EXCLUDED))
    if proc.returncode != 0 or not voices:
        raise LatticeTalkError(f"flite lists no voices: {_tail(proc.stderr or proc.stdout)}; run `{_INSTALL_HINT['flite']}`")
    return voices


def _flite_call(text: str, voice: str, extra: list[str], tmp: str) -> tuple[np.ndarray, int, list[tuple[str, float]], list[tuple[str, str]]]:
    wav = Path(tmp) / "out.wav"
    argv = ["flite", "-voice", voice, *extra, "-psdur", "-t", text, "-o", str(wav)]
    proc = _run("flite", argv, cwd=tmp)
    if proc.returncode != 0 or not wav.is_file():
        raise LatticeTalkError(f"flite failed for voice {voice}: {_tail(proc.stderr or proc.stdout)}")
    audio, native_rate = _read_wav(wav, "flite")
    ends, how = [], []
    for token in proc.stdout.split():
        match = re.fullmatch(r"([A-Za-z#]+):([0-9]*\.?[0-9]+)", token)
        if match:
            phoneme, h = _map_cmu(match.group(1))
            how.append((match.group(1), h))
            ends.append((phoneme, float(match.group(2))))
    if not ends:
        raise LatticeTalkError(f"flite printed no segment times for {text!r} (voice {voice})")
    return audio, native_rate, ends, how


_flite_f0_lock = threading.Lock()
_flite_f0_cache: dict[str, float] = {}


def _flite_default_f0(voice: str) -> float:
    """The voice's median F0 (Hz) on a calibration sentence, to turn ``pitch`` into flite's F0 target mean."""
    with _flite_f0_lock:
        if voice not in _flite_f0_cache:
            with tempfile.TemporaryDirectory(prefix="lt_flite_") as tmp:
                audio, rate, _, _ = _flite_call("Many people move a big blue boat along the river.", voice, [], tmp)
            _flite_f0_cache[voice] = median_f0(audio, rate)
        return _flite_f0_cache[voice]


def _synth_flite(text: str, voice: str, rate: float, pitch: float, meta: dict) -> Utterance:
    available = _flite_voices()
    if voice not in available:
        raise LatticeTalkError(f"flite has no voice {voice!r} here (it has {', '.join(available)}); run `{_INSTALL_HINT['flite']}`")
    if pitch != 1.0 and voice not in FLITE_PITCH_VOICES:
        raise ValueError(f"flite voice {voice} has no pitch control (rate only); pitch must be 1.0, got {pitch}")
    extra: list[str] = []
    if rate != 1.0:
        extra += ["--setf", f"duration_stretch={1.0 / rate:.6f}"]
    if pitch != 1.0:
        f0_mean = pitch * _flite_default_f0(voice)
        extra += ["--setf", f"int_f0_target_mean={f0_mean:.3f}"]
        meta["flite_f0_target_mean"] = round(f0_mean, 3)
    with tempfile.TemporaryDirectory(prefix="lt_flite_") as tmp:
        audio, native_rate, ends, how = _flite_call(text, voice, extra, tmp)
    meta.update(language="en-us", variant="")
    return _finish("flite", voice, text, audio, native_rate, ends, how, meta, starts=False)
