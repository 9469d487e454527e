"""p/b/m closure on held-out real voices with their true words: the closure measure without a face.

Whether the lips close on a p, b or m is read off the *predicted* mesh at the phone's time (DESIGN.md, *Real
speech is the measure*), so it needs no video of the speaker — only the phone's true time. A recording of read
speech with its corpus transcript gives that: the transcript is forced-aligned to the recording (PocketSphinx), so
every p/b/m is a true label, independent of any recogniser's guess (unlike the in-the-wild clips of the
audio-visual manifest, whose words are the recogniser's). ``datasets/real_voices_{dev,test}.tsv`` list such
recordings by speakers that no training, calibration or choice read.

Per line, each predictor (:func:`~.evaluate.speech_model_predictor`, any mode) is scored as the audio-visual
clips are: a p/b/m is closed when the predicted inner-lip gap is under 1 mm within the phone ±1 frame. Without
a face there are no "closures where the lips were open"; in their place, *closures off p/b/m* counts the
prediction's closures during speech (inside aligned words) more than two frames from any p/b/m — where a wrongly
heard p/b/m (recognition mode) or a stray detection would show."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from ..metrics import event_frames
from .real_lips import RealLips, aligned_speech, loudness_envelope
from .score import Prediction, pbm_scores, predicted_closed, runs, widened
from .voice_shards import SpokenLine, check_line_files, line_audio_file

VOICE_FPS = 25.0  # the GRID clips' rate: ±1 frame is ±40 ms, as on the audio-visual manifest's GRID sentences


def voice_lips(line: SpokenLine, index: int, folder: Path) -> RealLips:
    """A read line as the measure sees it: its aligned phones and words on VOICE_FPS frames, and no face (a line
    that is a span of a longer file is cut into ``folder``, :func:`~.voice_shards.line_audio_file`)."""
    from ..audio import load_audio

    path = line_audio_file(line, folder)
    audio = load_audio(path)
    n = max(1, int(round(audio.duration * VOICE_FPS)))
    times = np.arange(n) / VOICE_FPS
    phones, speech = aligned_speech(audio, line.text, times)
    return RealLips(f"{index:03d}_{path.stem}", line.speaker, VOICE_FPS, np.zeros(n), np.zeros(n, bool), speech,
                    phones, loudness_envelope(audio.samples, audio.sample_rate, times), path, 0.0, line.text)


def off_pbm_closures(closed: np.ndarray, lips: RealLips) -> int:
    """The prediction's closures (runs of ``closed``, :func:`~.score.predicted_closed`) during speech whose run ±1
    frame touches no p/b/m phone ±1 frame: more than two frames from every p/b/m."""
    n = lips.n_frames
    near_pbm = np.zeros(n, bool)
    for phone in lips.bilabials:
        frames = event_frames(phone, lips.fps, n)
        if frames is not None:
            near_pbm[widened(int(frames[0]), int(frames[-1]), n)] = True
    return sum(not near_pbm[widened(a, b, n)].any() for a, b in runs(closed & lips.speech))


def evaluate_voices(lines: list[SpokenLine], predictors: dict[str, Callable[[RealLips], Prediction]],
                    progress: Callable[[str], None] = lambda s: None) -> dict:
    """{"lines": per-line rows per predictor, "summary": p/b/m closed and closures off p/b/m per predictor}. Lines
    the aligner cannot place are listed under "unaligned" and scored by no predictor."""
    import tempfile

    from ..speech.alignment import AlignmentError

    check_line_files(lines)
    rows: dict[str, list[dict]] = {name: [] for name in predictors}
    unaligned = []
    for k, line in enumerate(lines):
        progress(f"{line.audio.name} ({k + 1}/{len(lines)})")
        with tempfile.TemporaryDirectory() as tmp:
            try:
                lips = voice_lips(line, k, Path(tmp))
            except AlignmentError as exc:
                unaligned.append({"audio": str(line.audio), "span": line.span, "reason": str(exc)})
                continue
            for name, predict in predictors.items():  # inside: the prediction reads the cut file
                closed = predicted_closed(predict(lips).gap_mm, lips)
                rows[name].append({"line": lips.name, "speaker": line.speaker, **pbm_scores(closed, lips),
                                   "closures_off_pbm": off_pbm_closures(closed, lips)})
    summary = {}
    for name, r in rows.items():
        pbm, closed = sum(x["pbm"] for x in r), sum(x["pbm_closed"] for x in r)
        summary[name] = {"lines": len(r), "speakers": len({x["speaker"] for x in r}), "pbm": pbm,
                         "pbm_closed": closed, "pbm_closure_rate": closed / pbm if pbm else None,
                         "closures_off_pbm": sum(x["closures_off_pbm"] for x in r)}
    return {"lines": rows, "summary": summary, "unaligned": unaligned}


def format_voice_summary(summary: dict) -> str:
    head = f"{'predictor':<28} {'lines':>6} {'speakers':>9} {'p/b/m closed':>16} {'closures off p/b/m':>19}"
    lines = [head, "-" * len(head)]
    for name, s in summary.items():
        rate = f"{s['pbm_closed']}/{s['pbm']} ({100 * s['pbm_closure_rate']:.0f} %)" if s["pbm"] else "—"
        lines.append(f"{name:<28} {s['lines']:>6} {s['speakers']:>9} {rate:>16} {s['closures_off_pbm']:>19}")
    return "\n".join(lines)


def write_voice_report(result: dict, out_dir: str | Path) -> Path:
    import json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "real_voices.json"
    path.write_text(json.dumps(result, indent=1))
    return path
