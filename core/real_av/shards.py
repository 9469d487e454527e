"""Training shards from real talking-face recordings: the sound, and the mouth the speaker really made.

For each video of one speaker: the face is tracked (cached by the video's sha256), the speaker's rest face is
the median of the closed-mouth frames over *all* their videos (one short clip has too few), and
``core.retarget`` solves the default head's ARKit units and jaw that reproduce the tracked points relative to
it (with the lip-contact term, so lips that touch on the speaker touch on the head). Units the audio path does
not drive (brows, eyes) are zeroed, as in the synthetic corpus. Phones come from forced alignment of the
clip's words. Each frame keeps the tracker's confidence, which weights it in training. The shards have the
synthetic corpus's format, so the decoder trains on a folder mixing both."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from ..data.corpus import CORPUS_FILE, FPS, SAMPLE_RATE, SHARD_SECONDS, CorpusUtterance, write_shard
from ..errors import LatticeTalkError
from ..npz_files import save_npz_atomic
from .manifest import sha256_of

TRACK_FORMAT = "lattice_talk.real_face_track/1"
GRID_TIME_UNIT = 1 / 25000  # GRID .align files count 1000 per 25 fps video frame


@dataclass
class TrackedFace:
    fps: float
    points: np.ndarray  # (T, 478, 3) pose-free metres (VideoTrack.points_metric)
    confidence: np.ndarray  # (T,)
    audio_offset: float


def track_face(video: Path, cache_dir: Path) -> TrackedFace:
    """The tracker's pose-free points for a video, from ``cache_dir`` when it has this file's track."""
    cache = cache_dir / f"{sha256_of(video)}.face.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            if meta.get("format") == TRACK_FORMAT:
                return TrackedFace(meta["fps"], data["points"].astype(np.float32), data["confidence"], meta["audio_offset"])
    from ..video.track import track_video

    track = track_video(video, face_crops=False, with_audio=False, min_face_fraction=0.3)
    face = TrackedFace(float(track.fps), track.points_metric.astype(np.float32), track.confidence.astype(np.float32),
                       float(track.audio_offset))
    meta = {"format": TRACK_FORMAT, "video": video.name, "fps": face.fps, "audio_offset": face.audio_offset}
    save_npz_atomic(cache, meta=np.array(json.dumps(meta)), points=face.points.astype(np.float16),
                    confidence=face.confidence)
    return face


def read_grid_words(path: Path) -> list[str]:
    """The spoken words of a GRID ``.align`` file (``start end word`` lines; ``sil`` and ``sp`` are pauses)."""
    words = [line.split()[2] for line in path.read_text().splitlines() if len(line.split()) == 3]
    return [w for w in words if w not in ("sil", "sp")]


def speaker_neutral(faces: Iterable[TrackedFace]) -> np.ndarray:
    """The speaker's rest face over all their videos (see ``face_models.neutral_face``)."""
    from ..motion.face_models import neutral_face

    faces = list(faces)
    points = np.concatenate([f.points for f in faces])
    reliable = np.concatenate([f.confidence > 0.5 for f in faces])
    return neutral_face(points, reliable)


def real_utterance(utterance_id: str, video: Path, words: list[str], face: TrackedFace, neutral: np.ndarray,
                   retargeter, split: str, speaker: str) -> CorpusUtterance:
    """One video → a corpus utterance at the corpus's frame rate (the tracked face resampled to FPS)."""
    from ..audio import load_audio
    from ..mouth import mouth_unit_mask
    from ..motion_file import MotionTrack
    from ..speech.alignment import align_words, phone_events

    audio = load_audio(video)
    if audio.sample_rate != SAMPLE_RATE:
        raise LatticeTalkError(f"{video}: audio at {audio.sample_rate} Hz, the corpus needs {SAMPLE_RATE} Hz")
    phones = phone_events(align_words(audio.samples, audio.sample_rate, " ".join(words)))
    motion = MotionTrack(fps=face.fps, points=face.points, point_ids=np.arange(face.points.shape[1]), neutral=neutral)
    result = retargeter.retarget(motion)
    # Video frames → corpus frames on the sound's clock (a sound that starts late is shifted to match).
    n = max(1, int(round(audio.duration * FPS)))
    times = np.arange(n) / FPS + face.audio_offset
    video_times = np.arange(len(result.jaw)) / face.fps

    def resample(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32).reshape(len(video_times), -1)
        return np.stack([np.interp(times, video_times, x[:, k]) for k in range(x.shape[1])], axis=1).astype(np.float32)

    names = tuple(result.expression_names)
    units = np.clip(resample(result.expression), 0.0, 1.0)
    units[:, ~mouth_unit_mask(names)] = 0.0
    jaw = resample(result.jaw)[:, 0]
    confidence = resample(face.confidence)[:, 0]
    confidence[(times < 0) | (times > video_times[-1])] = 0.0
    meta = {"id": utterance_id, "split": split, "speaker": speaker, "source": video.name, "text": " ".join(words),
            "engine": "real", "voice": speaker}
    return CorpusUtterance(utterance_id, audio.samples.astype(np.float32), SAMPLE_RATE, phones, FPS, names, units, jaw,
                           np.zeros((n, 3), np.float32), meta, confidence=confidence)


def recorded_copy(utterance: CorpusUtterance, seed: int) -> CorpusUtterance:
    """The utterance as another room and microphone would give it: ``core.data.augment``'s chain (reverb, band
    limits, noise, gain) without its speed change, so the frames keep their targets."""
    from dataclasses import replace

    from ..data.augment import AugmentSpec, augment

    copy = augment(utterance, replace(AugmentSpec(), speed_prob=0.0), seed=seed)
    return replace(copy, id=f"{utterance.id}-aug{seed}", meta={**copy.meta, "id": f"{utterance.id}-aug{seed}"})


class ShardWriter:
    """Utterances → ``{split}-{tag}-NNNN.npz`` shards of about SHARD_SECONDS each, and ``corpus.json`` at the end."""

    def __init__(self, out: Path, tag: str):
        self.out, self.tag = out, tag
        self.pending: dict[str, list[CorpusUtterance]] = {"train": [], "heldout": []}
        self.counts = {"train": 0, "heldout": 0}
        self.seconds = {"train": 0.0, "heldout": 0.0}
        self._index = {"train": 0, "heldout": 0}

    def add(self, split: str, utterance: CorpusUtterance, augmented_copies: int = 0, seed: int = 0) -> None:
        """The utterance and, in the training split, ``augmented_copies`` :func:`recorded_copy` of it."""
        copies = [recorded_copy(utterance, seed * 1000 + c) for c in range(augmented_copies)] if split == "train" else []
        for item in (utterance, *copies):
            self.pending[split].append(item)
            self.counts[split] += 1
            self.seconds[split] += len(item.audio) / SAMPLE_RATE
        if sum(len(u.audio) for u in self.pending[split]) / SAMPLE_RATE >= SHARD_SECONDS:
            self._flush(split)

    def _flush(self, split: str) -> None:
        if self.pending[split]:
            write_shard(self.out / f"{split}-{self.tag}-{self._index[split]:04d}.npz", self.pending[split])
            self._index[split] += 1
            self.pending[split] = []

    def close(self, summary: dict) -> dict:
        """Write what is pending and ``corpus.json`` (``summary`` plus the counts); returns it."""
        for split in self.pending:
            self._flush(split)
        summary = {**summary, "fps": FPS, "sample_rate": SAMPLE_RATE, "utterances": self.counts,
                   "hours": {s: round(v / 3600, 4) for s, v in self.seconds.items()}}
        (self.out / CORPUS_FILE).write_text(json.dumps(summary, indent=2))
        return summary


def build_real_corpus(videos: list[Path], words_of: Callable[[Path], list[str]], speaker: str, out: str | Path,
                      cache_dir: str | Path, heldout_share: float = 0.05, seed: int = 0, augmented_copies: int = 0,
                      progress: Callable[[str, float], None] = lambda stage, fraction: None) -> dict:
    """Shards of one speaker's videos in ``out`` (corpus format, ``engine`` "real"); a ``heldout_share`` of the
    videos, drawn with ``seed``, is the early-stopping split (the same speaker: it is a validation set, not a test).
    ``augmented_copies``: each training utterance again that many times through :func:`recorded_copy`, so the
    decoder hears one speaker through many rooms and microphones."""
    from ..heads import create
    from ..retarget import Retargeter

    out, cache_dir = Path(out), Path(cache_dir)
    out.mkdir(parents=True, exist_ok=True)
    faces = {}
    for k, video in enumerate(videos):
        progress("tracking", k / len(videos))
        faces[video] = track_face(video, cache_dir)
    neutral = speaker_neutral(faces.values())
    retargeter = Retargeter(create("default"))
    rng = np.random.default_rng(seed)
    heldout = set(rng.choice(len(videos), size=max(1, int(round(heldout_share * len(videos)))), replace=False).tolist())
    shards = ShardWriter(out, f"real-{speaker}")
    failed = []
    for k, video in enumerate(videos):
        progress("targets", k / len(videos))
        split = "heldout" if k in heldout else "train"
        try:
            utterance = real_utterance(f"{speaker}-{video.stem}", video, words_of(video), faces[video], neutral,
                                       retargeter, split, speaker)
        except LatticeTalkError as exc:  # a clip the aligner cannot follow is left out, and listed
            failed.append(f"{video.name}: {exc}")
            continue
        shards.add(split, utterance, augmented_copies, seed)
    return shards.close({"real": True, "speaker": speaker, "failed": failed,
                         "voices": {"train": [speaker], "heldout": [speaker]}})
