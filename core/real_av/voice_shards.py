"""Training shards from real speech without a face: many real voices teach the decoder when lips close.

Audio-only recordings of many speakers (read speech with its text) carry no mouth, but their phones do say
when the lips must close: every p/b/m is a closure, whoever speaks it. For each recording the transcript is
forced-aligned (``core.speech.alignment``), and the utterance gets

1. phones → the closure target and the mouth-class labels (``load_examples`` derives both from them), and
2. motion targets from a *teacher* speech model (a trained decoder's own raw output on this audio, its jaw guided by
   its mouth-opening head where its ``opening.json`` has a ``jaw_weight``), sealed where the aligned p/b/m are
   (``core.mouth.seal_lips``, as the synthetic corpus seals its targets).

Step 2 is distillation: the mouth keeps the motion the teacher learnt from synthetic and real faces, while
the closure and mouth-class heads learn from real voices. The shards have the corpus format, so they mix with
synthetic and talking-face shards in one training folder."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..data.corpus import FPS, SAMPLE_RATE, CorpusUtterance
from ..errors import LatticeTalkError
from .manifest import sha256_of
from .shards import ShardWriter


@dataclass(frozen=True)
class SpokenLine:
    audio: Path
    speaker: str
    text: str
    sha256: str | None = None  # of the audio file as its source publishes it; checked before the line is used
    source: str = ""  # where to take the file from when it is missing or differs
    span: tuple[int, int] | None = None  # [first, end) samples at the file's own rate: one utterance of a longer file


SPAN = re.compile(r"(\d+)-(\d+)")
LOSSLESS_FORMATS = ("WAV", "WAVEX", "FLAC", "AIFF")  # containers a span of samples is cut from exactly (span_problem)


def line_name(line: SpokenLine) -> str:
    """The line's file name, with its span of samples where it has one: ``p246_mic1_0_140000.wav``."""
    if line.span is None:
        return line.audio.name
    return f"{line.audio.stem}_{line.span[0]}_{line.span[1]}{line.audio.suffix}"


def line_audio_file(line: SpokenLine, folder: Path) -> Path:
    """The file holding exactly the line's audio: its own file, or its span of it cut losslessly into ``folder`` (the
    samples as stored, in the source's own format and sample type: no resampling, no re-encoding)."""
    if line.span is None:
        return line.audio
    import soundfile

    problem = span_problem(line)
    if problem is not None:
        raise LatticeTalkError(problem)
    info = soundfile.info(str(line.audio))
    floating = info.subtype in ("FLOAT", "DOUBLE")  # integer samples go through int32, which holds every PCM width
    samples, rate = soundfile.read(str(line.audio), start=line.span[0], stop=line.span[1],
                                   dtype="float64" if floating else "int32")
    cut = Path(folder) / line_name(line)
    soundfile.write(str(cut), samples, rate, format=info.format, subtype=info.subtype)
    return cut


def span_problem(line: SpokenLine) -> str | None:
    """Why the line's span of samples cannot be cut from its file (named, with the fix), or None."""
    import soundfile

    first, end = line.span
    try:
        info = soundfile.info(str(line.audio))
    except (OSError, RuntimeError) as exc:
        return f"{line.audio}: cannot read it ({exc}); a line with a span of samples needs a WAV or FLAC file"
    if info.format not in LOSSLESS_FORMATS or not info.subtype.startswith(("PCM", "FLOAT", "DOUBLE")):
        return (f"{line.audio}: a span of samples is cut only from uncompressed or lossless audio ({info.format} "
                f"{info.subtype} is not); convert the file to WAV or FLAC first")
    if end > info.frames:
        return f"{line.audio}: samples {first}-{end} run past its end ({info.frames} samples); check the line table"
    return None


SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def read_line_table(path: str | Path, root: str | Path | None = None) -> list[SpokenLine]:
    """A tab-separated table of ``audio<TAB>text[<TAB>speaker[<TAB>sha256[<TAB>source ...]]]`` rows; ``#`` lines
    are comments. Audio paths are relative to ``root`` (default: the table's folder); without a speaker column a
    line's speaker is its audio's folder name. Further columns (``datasets/training_voices.tsv``: sha256, source,
    license) are the file's checksum and where it comes from; a seventh, ``FIRST-END``, is the line's span of
    samples where the file holds several utterances (``datasets/real_voices_*.tsv``)."""
    path = Path(path)
    base = Path(root) if root is not None else path.parent
    lines = []
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                if not row or row[0].startswith("#"):
                    continue
                if len(row) < 2:
                    raise LatticeTalkError(f"{path}: the row {row!r} is not 'audio<TAB>text[<TAB>speaker]'")
                if len(row) > 3 and not SHA256_HEX.fullmatch(row[3]):
                    raise LatticeTalkError(f"{path}: the row {row[:4]!r} has no sha256 (64 hex digits) in column 4")
                span = SPAN.fullmatch(row[6]) if len(row) > 6 and row[6] else None
                if len(row) > 6 and row[6] and (span is None or int(span[1]) >= int(span[2])):
                    raise LatticeTalkError(f"{path}: the row {row[:1]!r} has {row[6]!r} in column 7, where a sample "
                                           "span FIRST-END (FIRST < END) belongs")
                audio = base / row[0]
                lines.append(SpokenLine(audio, row[2] if len(row) > 2 else audio.parent.name, row[1],
                                        row[3] if len(row) > 3 else None, row[4] if len(row) > 4 else "",
                                        (int(span[1]), int(span[2])) if span else None))
    except (OSError, UnicodeDecodeError) as exc:
        raise LatticeTalkError(f"{path}: cannot read the line table ({exc})") from exc
    if not lines:
        raise LatticeTalkError(f"{path}: no lines (expected rows 'audio<TAB>text[<TAB>speaker]')")
    return lines


def grid_lines(folder: str | Path) -> list[SpokenLine]:
    """A GRID speaker's folder (``NAME.mpg`` with ``NAME.align`` beside it) as lines: the sound of each video with the
    words of its alignment; the speaker is the folder's name with ``grid_`` before it (GRID's ``s1`` → ``grid_s1``;
    a folder named ``grid_s1`` keeps its name)."""
    from .shards import read_grid_words

    folder = Path(folder)
    speaker = folder.name if folder.name.startswith("grid_") else f"grid_{folder.name}"
    lines = [SpokenLine(video, speaker, " ".join(read_grid_words(video.with_suffix(".align"))))
             for video in sorted(folder.glob("*.mpg")) if video.with_suffix(".align").is_file()]
    if not lines:
        raise LatticeTalkError(f"{folder}: no GRID videos with their word alignments (NAME.mpg beside NAME.align)")
    return lines


def check_line_files(lines: list[SpokenLine]) -> None:
    """Every line with a sha256 has its audio file, byte for byte, and every span of samples lies in a file it can be
    cut from — else one error listing them all."""
    problems, digests = [], {}
    for line in lines:
        if line.sha256 is not None:
            origin = f"take it unchanged from {line.source}" if line.source else "take it unchanged from its source"
            if not line.audio.is_file():
                problems.append(f"{line.audio} is missing ({origin})")
                continue
            if line.audio not in digests:  # one file may hold many lines' spans: read it once
                digests[line.audio] = sha256_of(line.audio)
            if digests[line.audio] != line.sha256:
                problems.append(f"{line.audio} differs from the table's (sha256 mismatch; {origin})")
                continue
        if line.span is not None and line.audio.is_file():
            problems.append(span_problem(line))
    problems = list(dict.fromkeys(p for p in problems if p is not None))
    if problems:
        raise LatticeTalkError(f"{len(problems)} audio file(s) are not the ones the line table names, so nothing was "
                               "written: " + "; ".join(problems))


class TeacherModel:
    """A trained speech model's raw units and jaw (before its own seal) for a whole utterance; its jaw guided by its
    mouth-opening head where the model's ``opening.json`` gives a ``jaw_weight`` (as ``generate`` guides it), so a
    decoder can learn the guided motion on real voices."""

    def __init__(self, model_dir: str | Path):
        from ..speech.features import decoder_features
        from ..speech.model import load_decoder
        from ..speech.opening import folder_opening_head

        self.model, config = load_decoder(model_dir)
        self.unit_names = tuple(config["unit_names"])
        self.features = decoder_features(config, model_dir)
        head = folder_opening_head(model_dir)
        self.opening = head if head is not None and head.jaw_weight > 0 else None

    def __call__(self, samples: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        from ..speech.model import decode

        units, jaw, _ = decode(self.model, self.features(samples), n_frames)
        if self.opening is not None:
            jaw = self.opening.guided_jaw(units, jaw, self.unit_names, samples, n_frames)
        return units, jaw


def voice_utterance(utterance_id: str, line: SpokenLine, teacher: TeacherModel, split: str) -> CorpusUtterance:
    """One recording → a corpus utterance: aligned phones, the teacher's motion sealed on its p/b/m."""
    import tempfile

    from ..audio import load_audio
    from ..mouth import closure_curve, seal_lips
    from ..speech.alignment import align_words, phone_events

    with tempfile.TemporaryDirectory() as tmp:
        audio = load_audio(line_audio_file(line, Path(tmp)), target_rate=SAMPLE_RATE, max_seconds=60.0)
    phones = phone_events(align_words(audio.samples, audio.sample_rate, line.text))
    n = max(1, int(round(audio.duration * FPS)))
    units, jaw = teacher(audio.samples, n)
    units, jaw = seal_lips(units, jaw, closure_curve(phones, np.arange(n) / FPS, FPS), teacher.unit_names)
    meta = {"id": utterance_id, "split": split, "speaker": line.speaker, "source": line_name(line), "text": line.text,
            "engine": "real-voice", "voice": line.speaker}
    return CorpusUtterance(utterance_id, audio.samples.astype(np.float32), SAMPLE_RATE, phones, FPS, teacher.unit_names,
                           units.astype(np.float32), jaw.astype(np.float32), np.zeros((n, 3), np.float32), meta)


def build_voice_corpus(lines: list[SpokenLine], teacher_dir: str | Path, out: str | Path, tag: str,
                       heldout_share: float = 0.05, seed: int = 0, augmented_copies: int = 0,
                       progress: Callable[[str, float], None] = lambda stage, fraction: None) -> dict:
    """Shards of ``lines`` in ``out`` (corpus format, ``engine`` "real-voice"); a ``heldout_share`` of each
    speaker's lines, drawn with ``seed``, is the early-stopping split (the same speakers: a validation set, not a
    test). ``augmented_copies``: each training line again through :func:`~.shards.recorded_copy`. Files with a
    sha256 are checked first: a missing or changed one stops the build before anything is written."""
    check_line_files(lines)
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
            utterance = voice_utterance(f"{tag}-{line.speaker}-{Path(line_name(line)).stem}", line, teacher, split)
        except LatticeTalkError as exc:  # a line the aligner cannot follow is left out, and listed
            failed.append(f"{line_name(line)}: {exc}")
            continue
        shards.add(split, utterance, augmented_copies, seed)
    speakers = sorted({line.speaker for line in lines})
    guided = {} if teacher.opening is None else {"teacher_jaw_weight": teacher.opening.jaw_weight,
                                                 "teacher_opening_sha256": teacher.opening.sha256}
    return shards.close({"real": True, "audio_only": True, "teacher": str(teacher_dir), **guided, "speakers": speakers,
                         "failed": failed, "voices": {"train": speakers, "heldout": speakers}})
