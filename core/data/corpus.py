"""The synthetic speech–motion corpus: shards of (audio, phonemes, articulation), split by voice and sentence.

``synth_corpus`` speaks sentences with many voices (espeak-ng, festival, flite), augments half of them,
turns their true phoneme timings into default-head articulation, and writes shards. Held-out utterances
use voices *and* sentences that no training utterance uses. ``Corpus`` reads shards back and gives each
utterance as a :class:`~..motion_file.MotionTrack` (MediaPipe points from the default head's rig).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from ..audio import SPEECH_RATE
from ..errors import LatticeTalkError
from ..landmark_rig import LandmarkRig
from ..npz_files import save_npz_atomic
from ..motion_file import MotionTrack
from .articulation import Articulation, articulate
from ..phonemes import PhonemeEvent

SHARD_FORMAT = "lattice_talk.corpus_shard/1"
CORPUS_FILE = "corpus.json"
SPLITS = ("train", "heldout")
FPS = 30.0
SAMPLE_RATE = SPEECH_RATE
SHARD_SECONDS = 300.0
HELDOUT_SHARE = 0.1  # of utterances; held-out voices are ~20 % of the voice identities
# espeak-ng has hundreds of voice variants but one vocoder; the recorded-voice synthesizers get an equal
# say so the model does not learn espeak's artefacts.
ENGINE_WEIGHTS = {"espeak-ng": 0.4, "festival": 0.3, "flite": 0.3}
AUGMENT_SHARE = 0.5
RECOMBINE_SHARE = 0.5  # of training utterances that speak recombined words instead of a written sentence


@dataclass(frozen=True)
class UtteranceJob:
    id: str
    split: str
    text: str
    engine: str
    voice: str
    rate: float
    pitch: float
    language: str
    seed: int
    augment: bool


@dataclass
class CorpusUtterance:
    id: str
    audio: np.ndarray  # float32 mono at sample_rate
    sample_rate: int
    phonemes: list[PhonemeEvent]
    fps: float
    unit_names: tuple[str, ...]
    units: np.ndarray  # (T, U)
    jaw: np.ndarray  # (T,)
    head_rotation: np.ndarray  # (T, 3)
    meta: dict = field(default_factory=dict)
    confidence: np.ndarray | None = None  # (T,) 0..1 how far each frame's targets are trusted (real recordings); None: all

    def articulation(self) -> Articulation:
        return Articulation(self.fps, self.unit_names, self.units, self.jaw, self.head_rotation,
                            np.zeros(len(self.jaw), np.float32), self.meta)

    def motion(self, rig: LandmarkRig) -> MotionTrack:
        """MediaPipe points on the default head, without the rigid head motion (kept in head_rotation)."""
        pose = self.articulation().pose()
        pose[:, 0] = 0.0
        points = rig.points(self.units.astype(np.float32), pose)
        neutral = rig.points(np.zeros((1, len(self.unit_names)), np.float32), np.zeros((1, 5, 3), np.float32))[0]
        return MotionTrack(fps=self.fps, points=points, point_ids=rig.mediapipe_index, neutral=neutral,
                           phonemes=self.phonemes, audio=self.audio, sample_rate=self.sample_rate,
                           meta=self.meta, head_rotation=self.head_rotation)


# ------------------------------------------------------------------------------------- planning


def split_voices(identities: list[tuple[str, str]], seed: int, share: float = 0.2) -> set[tuple[str, str]]:
    """Held-out voice identities (engine, voice): about ``share`` of each engine's, at least one each
    where an engine has two or more, so every synthesizer is also tested on voices it never trained on."""
    rng = np.random.default_rng(seed)
    heldout: set[tuple[str, str]] = set()
    for engine in sorted({e for e, _ in identities}):
        mine = sorted(v for e, v in identities if e == engine)
        if len(mine) < 2:
            continue
        count = max(1, int(round(share * len(mine))))
        heldout |= {(engine, mine[i]) for i in rng.permutation(len(mine))[:count]}
    return heldout


def plan_jobs(seed: int, languages: tuple[str, ...] = ("en",), recombine_share: float = RECOMBINE_SHARE) -> Iterator[UtteranceJob]:
    """An endless, deterministic stream of utterances to synthesize. ``recombine_share`` of the training
    utterances speak training-sentence words in new orders (held-out ones always speak held-out
    sentences); the choice comes from each job's own seed, so the held-out stream does not depend on it."""
    from .sentences import recombine, split_sentences
    from .tts import voice_pool

    pool = voice_pool(languages)
    if not pool:
        raise LatticeTalkError("no speech synthesizer is installed: apt-get install espeak-ng festival festvox-us-slt-hts flite")
    identities = sorted({(v.engine, v.voice) for v in pool})
    heldout_voices = split_voices(identities, seed)
    by_split = {split: [v for v in pool if ((v.engine, v.voice) in heldout_voices) == (split == "heldout")] for split in SPLITS}
    sentences = {}
    for language in languages:
        train, heldout = split_sentences(seed, language=language)
        sentences[("train", language)], sentences[("heldout", language)] = train, heldout
    rng = np.random.default_rng(seed)
    for index in range(10**9):
        split = "heldout" if rng.random() < HELDOUT_SHARE and by_split["heldout"] else "train"
        engines = sorted({v.engine for v in by_split[split]})
        weights = np.array([ENGINE_WEIGHTS.get(e, 0.1) for e in engines])
        engine = engines[int(rng.choice(len(engines), p=weights / weights.sum()))]
        voices = [v for v in by_split[split] if v.engine == engine]
        voice = voices[int(rng.integers(len(voices)))]
        texts = sentences[(split, voice.language)]
        text = texts[int(rng.integers(len(texts)))]
        job_seed = int(rng.integers(2**31 - 1))
        augment = bool(rng.random() < AUGMENT_SHARE)
        words_rng = np.random.default_rng([job_seed, 1])
        if split == "train" and words_rng.random() < recombine_share:
            text = recombine(texts, words_rng)
        yield UtteranceJob(
            id=f"{split}-{index:07d}", split=split, text=text, engine=voice.engine, voice=voice.voice, rate=voice.rate,
            pitch=voice.pitch, language=voice.language, seed=job_seed, augment=augment,
        )


def render_job(job: UtteranceJob, unit_names: tuple[str, ...]) -> CorpusUtterance:
    """Synthesize, maybe augment, and articulate one utterance (runs in worker processes)."""
    from .augment import augment
    from .tts import synthesize

    utterance = synthesize(job.text, job.engine, job.voice, job.rate, job.pitch, job.seed)
    if job.augment:
        utterance = augment(utterance, seed=job.seed)
    motion = articulate(utterance.phonemes, unit_names, FPS, utterance.audio, utterance.sample_rate, seed=job.seed)
    meta = {**asdict(job), "augment_ops": utterance.meta.get("augment", []), "effort": motion.meta["effort"]}
    return CorpusUtterance(job.id, utterance.audio, utterance.sample_rate, utterance.phonemes, FPS, unit_names,
                           motion.units, motion.jaw, motion.head_rotation, meta)


# ------------------------------------------------------------------------------------- shards


def write_shard(path: Path, utterances: list[CorpusUtterance]) -> Path:
    first = utterances[0]
    audio = [np.clip(np.round(u.audio * 32767), -32768, 32767).astype(np.int16) for u in utterances]
    arrays = {
        "audio": np.concatenate(audio),
        "audio_offsets": np.cumsum([0] + [len(a) for a in audio]),
        "frame_offsets": np.cumsum([0] + [len(u.jaw) for u in utterances]),
        "units": np.concatenate([u.units for u in utterances]).astype(np.float16),
        "jaw": np.concatenate([u.jaw for u in utterances]).astype(np.float32),
        "head_rotation": np.concatenate([u.head_rotation for u in utterances]).astype(np.float16),
        "confidence": np.concatenate([np.ones(len(u.jaw), np.float16) if u.confidence is None else u.confidence
                                      for u in utterances]).astype(np.float16),
        "phoneme_offsets": np.cumsum([0] + [len(u.phonemes) for u in utterances]),
        "phoneme_labels": np.array([p.phoneme for u in utterances for p in u.phonemes], dtype="<U4"),
        "phoneme_times": np.array([(p.start, p.end) for u in utterances for p in u.phonemes], np.float64).reshape(-1, 2),
        "header": np.array(json.dumps({"format": SHARD_FORMAT, "fps": first.fps, "sample_rate": first.sample_rate,
                                       "unit_names": list(first.unit_names), "meta": [u.meta for u in utterances]})),
    }
    return save_npz_atomic(path, **arrays)


def read_shard(path: Path) -> list[CorpusUtterance]:
    try:
        with np.load(path, allow_pickle=False) as npz:
            a = {k: npz[k] for k in npz.files}
        header = json.loads(str(a["header"]))
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise LatticeTalkError(f"{path}: not a readable corpus shard ({exc})") from exc
    if header.get("format") != SHARD_FORMAT:
        raise LatticeTalkError(f"{path}: not a LatticeTalk corpus shard")
    out = []
    for i, meta in enumerate(header["meta"]):
        a0, a1 = a["audio_offsets"][i:i + 2]
        f0, f1 = a["frame_offsets"][i:i + 2]
        p0, p1 = a["phoneme_offsets"][i:i + 2]
        phonemes = [PhonemeEvent(str(lbl), float(s), float(e)) for lbl, (s, e) in zip(a["phoneme_labels"][p0:p1], a["phoneme_times"][p0:p1])]
        out.append(CorpusUtterance(meta["id"], a["audio"][a0:a1].astype(np.float32) / 32767.0, int(header["sample_rate"]),
                                   phonemes, float(header["fps"]), tuple(header["unit_names"]),
                                   a["units"][f0:f1].astype(np.float32), a["jaw"][f0:f1],
                                   a["head_rotation"][f0:f1].astype(np.float32), meta,
                                   a["confidence"][f0:f1].astype(np.float32) if "confidence" in a else None))
    return out


class Corpus:
    """A corpus folder: ``corpus.json`` + ``<split>-NNNN.npz`` shards."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        path = self.root / CORPUS_FILE
        if not path.is_file():
            raise LatticeTalkError(f"{self.root}: no {CORPUS_FILE}; make one with 'python -m lattice_talk data synth'")
        self.summary = json.loads(path.read_text())

    def shards(self, split: str) -> list[Path]:
        return sorted(self.root.glob(f"{split}-*.npz"))

    def utterances(self, split: str) -> Iterator[CorpusUtterance]:
        for shard in self.shards(split):
            yield from read_shard(shard)


# ------------------------------------------------------------------------------------- generation


def synth_corpus(out: str | Path, hours: float, seed: int = 0, workers: int = 2, languages: tuple[str, ...] = ("en",),
                 progress: Callable[[float], None] | None = None, recombine_share: float = RECOMBINE_SHARE,
                 skip: int = 0) -> dict:
    """Generate ``hours`` of speech with motion into ``out``; returns (and writes) the corpus summary.

    ``skip`` starts the seed's utterance stream that many utterances in, so a second folder made with the
    same seed (same held-out voices and sentences) holds new utterances: pass the first corpus's total.

    ``progress`` receives seconds of audio as they are added. Resumable it is not: a new run replaces
    the folder's shards."""
    from concurrent.futures import ProcessPoolExecutor

    from ..heads import create

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*-*.npz"):
        old.unlink()
    unit_names = create("default").expression_names
    target = hours * 3600.0
    pending: dict[str, list[CorpusUtterance]] = {s: [] for s in SPLITS}
    seconds = {s: 0.0 for s in SPLITS}
    counts = {s: 0 for s in SPLITS}
    shard_index = {s: 0 for s in SPLITS}
    engines: dict[str, float] = {}
    voices: dict[str, set] = {s: set() for s in SPLITS}
    texts: dict[str, set] = {s: set() for s in SPLITS}

    def flush(split: str) -> None:
        if pending[split]:
            write_shard(out / f"{split}-{shard_index[split]:04d}.npz", pending[split])
            shard_index[split] += 1
            pending[split] = []

    jobs = plan_jobs(seed, languages, recombine_share)
    for _ in range(skip):
        next(jobs)
    total = 0.0
    with ProcessPoolExecutor(max_workers=workers) as pool:
        in_flight = [pool.submit(render_job, next(jobs), unit_names) for _ in range(workers * 4)]
        while total < target:
            utterance = in_flight.pop(0).result()
            in_flight.append(pool.submit(render_job, next(jobs), unit_names))
            split = utterance.meta["split"]
            duration = len(utterance.audio) / utterance.sample_rate
            pending[split].append(utterance)
            seconds[split] += duration
            counts[split] += 1
            engines[utterance.meta["engine"]] = engines.get(utterance.meta["engine"], 0.0) + duration
            voices[split].add(f"{utterance.meta['engine']}:{utterance.meta['voice']}")
            texts[split].add(utterance.meta["text"])
            total += duration
            if sum(len(u.audio) for u in pending[split]) / SAMPLE_RATE >= SHARD_SECONDS:
                flush(split)
            if progress is not None:
                progress(duration)
        pool.shutdown(wait=True, cancel_futures=True)  # work queued past the target is dropped
    for split in SPLITS:
        flush(split)
    summary = {
        "seed": seed, "fps": FPS, "sample_rate": SAMPLE_RATE, "languages": list(languages), "recombine_share": recombine_share,
        "skipped_utterances": skip,
        "hours": {s: round(seconds[s] / 3600, 4) for s in SPLITS}, "utterances": counts,
        "engine_hours": {e: round(v / 3600, 4) for e, v in sorted(engines.items())},
        "voices": {s: sorted(voices[s]) for s in SPLITS}, "sentences": {s: len(texts[s]) for s in SPLITS},
        "shared_voices": sorted(voices["train"] & voices["heldout"]),
        "shared_sentences": len(texts["train"] & texts["heldout"]),
    }
    (out / CORPUS_FILE).write_text(json.dumps(summary, indent=2))
    return summary
