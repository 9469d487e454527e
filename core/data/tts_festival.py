"""festival with the HTS voice ``cmu_us_slt_arctic_hts`` (and ``kal_diphone`` where installed): the
HTS engine generates each phone's duration and festival writes those back to the utterance, so
``utt.save.segs`` gives the phone end times of the generated wave (5 ms frames). Rate goes through
the engine's ``-r`` option (``Duration_Stretch`` does nothing to HTS voices).
"""

from __future__ import annotations

import functools
import re
import tempfile
from pathlib import Path

from ..errors import LatticeTalkError
from .tts_common import _INSTALL_HINT, Utterance, _finish, _map_cmu, _read_wav, _run, _tail

FESTIVAL_ALIASES = {"slt": "cmu_us_slt_arctic_hts", "kal": "kal_diphone"}


@functools.lru_cache(maxsize=1)
def _festival_voices() -> tuple[str, ...]:
    with tempfile.TemporaryDirectory(prefix="lt_festival_") as tmp:
        script = Path(tmp) / "voices.scm"
        script.write_text("(print (voice.list))\n")
        proc = _run("festival", ["festival", "-b", str(script)], cwd=tmp)
    match = re.search(r"\(([^()]*)\)", proc.stdout)
    if proc.returncode != 0 or not match:
        raise LatticeTalkError(f"festival could not list its voices: {_tail(proc.stderr or proc.stdout)}")
    return tuple(sorted(match.group(1).split()))


def _scheme_string(value: str) -> str:
    return '"' + value.replace("\\", "").replace('"', "") + '"'


def _synth_festival(text: str, voice: str, rate: float, pitch: float, meta: dict) -> Utterance:
    name = FESTIVAL_ALIASES.get(voice, voice)
    available = _festival_voices()
    if name not in available:
        raise LatticeTalkError(
            f"festival has no voice {voice!r} here (it has {', '.join(available) or 'none'}); "
            f"for the HTS voice run `{_INSTALL_HINT['festival']}`"
        )
    hts = name.endswith("_hts")
    if pitch != 1.0:
        raise ValueError(f"festival voice {name} has no pitch control here (rate only); pitch must be 1.0, got {pitch}")
    with tempfile.TemporaryDirectory(prefix="lt_festival_") as tmp:
        wav, segs, script = Path(tmp) / "out.wav", Path(tmp) / "out.segs", Path(tmp) / "say.scm"
        lines = [f"(voice_{name})"]
        if hts:
            lines.append(f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {rate:.6f}))))')
        else:
            lines.append(f"(Parameter.set 'Duration_Stretch {1.0 / rate:.6f})")
        lines += [
            f"(set! lt_utt (Utterance Text {_scheme_string(text)}))",
            "(utt.synth lt_utt)",
            f"(utt.save.wave lt_utt {_scheme_string(str(wav))} 'riff)",
            f"(utt.save.segs lt_utt {_scheme_string(str(segs))})",
        ]
        script.write_text("\n".join(lines) + "\n", encoding="utf-8")
        proc = _run("festival", ["festival", "-b", str(script)], cwd=tmp)
        if not wav.is_file() or not segs.is_file():
            raise LatticeTalkError(f"festival failed for voice {name}: {_tail(proc.stderr or proc.stdout)}")
        audio, native_rate = _read_wav(wav, "festival")
        seg_text = segs.read_text(encoding="utf-8", errors="replace")
    ends, how = [], []
    body = seg_text.split("#", 1)[1] if "#" in seg_text else seg_text
    for line in body.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        phoneme, h = _map_cmu(parts[2])
        how.append((parts[2], h))
        ends.append((phoneme, float(parts[0])))
    if not ends:
        raise LatticeTalkError(f"festival wrote no segments for {text!r}")
    meta.update(language="en-us", variant="", festival_voice=name)
    return _finish("festival", name, text, audio, native_rate, ends, how, meta, starts=False)
