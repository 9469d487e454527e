"""Training shards from real speech without a face: many real voices teach the decoder when lips close.

Audio-only recordings of many speakers (read speech with its text) carry no mouth, but their phones do say
when the lips must close: every p/b/m is a closure, whoever speaks it. For each recording the transcript is
forced-aligned (``core.speech.alignment``), and the utterance gets

1. phones → the closure target and the mouth-class labels (``load_examples`` derives both from them), and
2. motion targets from a *teacher* speech model (the shipped decoder's own raw output on this audio), sealed
   where the aligned p/b/m are (``articulation.seal_lips``, as the synthetic corpus seals its targets).

Step 2 is distillation: the mouth keeps the motion the teacher learnt from synthetic and real faces, while
the closure and mouth-class heads learn from real voices. The shards have the corpus format, so they mix with
synthetic and talking-face shards in one training folder."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.corpus import FPS, SAMPLE_RATE, CorpusUtterance
from ..errors import LatticeTalkError
from .shards import ShardWriter


@dataclass(frozen=True)
class SpokenLine:
    audio: Path
    speaker: str
    text: str


def read_line_table(path: str | Path) -> list[SpokenLine]:
    """A tab-separated table of ``audio<TAB>text[<TAB>speaker]`` rows, audio relative to the table's folder;
    without a speaker column a line's speaker is its audio's folder name."""
    path = Path(path)
    lines = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                if not row or row[0].startswith("#"):
                    continue
                if len(row) not in (2, 3):
                    raise LatticeTalkError(f"{path}: the row {row!r} is not 'audio<TAB>text[<TAB>speaker]'")
                audio = path.parent / row[0]
                lines.append(SpokenLine(audio, row[2] if len(row) == 3 else audio.parent.name, row[1]))
    except (OSError, UnicodeDecodeError) as exc:
        raise LatticeTalkError(f"{path}: cannot read the line table ({exc})") from exc
    if not lines:
        raise LatticeTalkError(f"{path}: no lines (expected rows 'audio<TAB>text[<TAB>speaker]')")
    return lines


class TeacherModel:
    """A trained speech model's raw units and jaw (before its own seal) for a whole utterance."""

    def __init__(self, model_dir: str | Path):
        from ..speech.features import decoder_features
        from ..speech.train import load_decoder

        self.model, config = load_decoder(model_dir)
        self.unit_names = tuple(config["unit_names"])
        self.features = decoder_features(config, model_dir)

    def __call__(self, samples: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        from ..speech.train import decode

        units, jaw, _ = decode(self.model, self.features(samples), n_frames)
        return units, jaw


def voice_utterance(utterance_id: str, line: SpokenLine, teacher: TeacherModel, split: str) -> CorpusUtterance:
    """One recording → a corpus utterance: aligned phones, the teacher's motion sealed on its p/b/m."""
    from ..audio import load_audio
    from ..data.articulation import closure_curve, seal_lips
    from ..speech.alignment import align_words, phone_events

    audio = load_audio(line.audio, target_rate=SAMPLE_RATE, max_seconds=60.0)
    phones = phone_events(align_words(audio.samples, audio.sample_rate, line.text))
    n = max(1, int(round(audio.duration * FPS)))
    units, jaw = teacher(audio.samples, n)
    units, jaw = seal_lips(units, jaw, closure_curve(phones, np.arange(n) / FPS, FPS), teacher.unit_names)
    meta = {"id": utterance_id, "split": split, "speaker": line.speaker, "source": line.audio.name, "text": line.text,
            "engine": "real-voice", "voice": line.speaker}
    return CorpusUtterance(utterance_id, audio.samples.astype(np.float32), SAMPLE_RATE, phones, FPS, teacher.unit_names,
                           units.astype(np.float32), jaw.astype(np.float32), np.zeros((n, 3), np.float32), meta)


def build_voice_corpus(lines: list[SpokenLine], teacher_dir: str | Path, out: str | Path, tag: str,
                       heldout_share: float = 0.05, seed: int = 0, augmented_copies: int = 0,
                       progress: Callable[[str, float], None] = lambda stage, fraction: None) -> dict:
    """Shards of ``lines`` in ``out`` (corpus format, ``engine`` "real-voice"); a ``heldout_share`` of each
    speaker's lines, drawn with ``seed``, is the early-stopping split (the same speakers: a validation set, not a
    test). ``augmented_copies``: each training line again through :func:`~.shards.recorded_copy`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    teacher = TeacherModel(teacher_dir)
    rng = np.random.default_rng(seed)
    heldout = set(np.flatnonzero(rng.random(len(lines)) < heldout_share).tolist())
    shards = ShardWriter(out, tag)
    failed = []
    for k, line in enumerate(lines):
        progress("aligning", k / len(lines))
        split = "heldout" if k in heldout else "train"
        try:
            utterance = voice_utterance(f"{tag}-{line.speaker}-{line.audio.stem}", line, teacher, split)
        except LatticeTalkError as exc:  # a line the aligner cannot follow is left out, and listed
            failed.append(f"{line.audio.name}: {exc}")
            continue
        shards.add(split, utterance, augmented_copies, seed)
    speakers = sorted({line.speaker for line in lines})
    return shards.close({"real": True, "audio_only": True, "teacher": str(teacher_dir), "speakers": speakers,
                         "failed": failed, "voices": {"train": speakers, "heldout": speakers}})
