"""The tracked video corpus the video face model learns from: each rendered video's track, cached next to it,
and its ground truth.

Every video of a rendered corpus (``data render-videos``) is tracked once with
:func:`core.video.track.track_video` and its arrays are cached next to it (``vNNNNN.track.npz``,
``vNNNNN_relit.track.npz``); the ground truth is the clip the video was rendered from (``vNNNNN.npz``: the
default head's 52 ARKit units and head rotation per frame). A validation subset of the ``train`` entries
(by entry index, so a relit video stays with its partner) drives early stopping.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import LatticeTalkError
from ..npz_files import save_npz_atomic
from .track_arrays import TRACK_ARRAYS, TrackArrays

TRACK_SUFFIX = ".track.npz"
TRACK_FORMAT = "lattice_talk.video_track_cache/3"  # 2: tracked with the mirror pass; 3: with face crops
VALIDATION_SHARE = 0.15


def save_track(track, path: str | Path, video: Path) -> Path:
    stat = video.stat()
    arrays = {name: np.asarray(getattr(track, name), np.float32) for name in TRACK_ARRAYS}
    arrays["face_crops"] = np.asarray(track.face_crops, np.uint8)
    meta = {"format": TRACK_FORMAT, "source": video.name, "fps": float(track.fps), "width": int(track.width),
            "height": int(track.height), "video_bytes": stat.st_size, "video_mtime": stat.st_mtime}
    return save_npz_atomic(path, meta=np.array(json.dumps(meta)), **arrays)


def load_track(path: str | Path) -> TrackArrays:
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        arrays = {name: data[name] for name in (*TRACK_ARRAYS, "face_crops") if name in data}
    if meta.get("format") != TRACK_FORMAT:
        if str(meta.get("format", "")).startswith(TRACK_FORMAT.rsplit("/", 1)[0]):
            raise LatticeTalkError(f"{path}: tracked by an older LatticeTalk ({meta['format']}, without the mirror "
                                   "pass or face crops); re-track the corpus with 'python -m lattice_talk video track --corpus DIR'")
        raise LatticeTalkError(f"{path}: not a LatticeTalk track cache ({meta.get('format')!r})")
    return TrackArrays(source=meta["source"], fps=meta["fps"], width=meta["width"], height=meta["height"], **arrays)


def _cache_is_fresh(cache: Path, video: Path) -> bool:
    if not cache.is_file():
        return False
    try:
        with np.load(cache, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError):
        return False
    stat = video.stat()
    return meta.get("format") == TRACK_FORMAT and meta.get("video_bytes") == stat.st_size


@dataclass
class VideoExample:
    """One corpus video with its tracked arrays and ground truth."""

    name: str
    index: int  # corpus entry (a relit video shares its partner's index and ground truth)
    split: str
    kind: str
    label: str | None
    relit: bool
    track: TrackArrays
    units: np.ndarray  # (T, 52) ground-truth default-head units
    rotation: np.ndarray  # (T, 3) ground-truth head rotation (axis-angle)
    apex_frame: int | None
    unit_names: tuple[str, ...]


def read_manifest(corpus_dir: str | Path) -> dict:
    from ..data.video_clips import CORPUS_FORMAT, MANIFEST

    path = Path(corpus_dir) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise LatticeTalkError(f"{corpus_dir}: no video corpus manifest ({exc}); render one with "
                               "'python -m lattice_talk data render-videos'") from exc
    if manifest.get("format") != CORPUS_FORMAT:
        raise LatticeTalkError(f"{path}: not a LatticeTalk video corpus ({manifest.get('format')!r})")
    return manifest


def build_track_cache(corpus_dir: str | Path, progress: Callable[[int, int, str], None] | None = None,
                      refresh: bool = False) -> dict:
    """Track every video of the corpus that has no fresh cache yet; returns counts and seconds.
    Videos where the tracker fails (no face) are recorded in ``track_failures.json`` and skipped later."""
    corpus_dir = Path(corpus_dir)
    clips = read_manifest(corpus_dir)["clips"]
    videos = [(entry["name"], corpus_dir / entry["video"]) for entry in clips]
    stats, _ = _track_videos(videos, corpus_dir, corpus_dir / "track_failures.json", progress, refresh)
    return stats


VIDEO_SUFFIXES = (".mp4", ".mpg", ".mpeg", ".mov", ".avi", ".mkv", ".webm")


def track_folder(folder: str | Path, cache_dir: str | Path,
                 progress: Callable[[int, int, str], None] | None = None) -> tuple[list[TrackArrays], dict]:
    """Every video in ``folder`` (not its sub-folders) tracked once into ``cache_dir`` (``NAME.track.npz``, as a
    corpus's; videos without a face are listed in its ``track_failures.json``); their tracks and the counts."""
    folder, cache_dir = Path(folder), Path(cache_dir)
    videos = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file()) \
        if folder.is_dir() else []
    if not videos:
        raise LatticeTalkError(f"{folder}: no videos ({', '.join(VIDEO_SUFFIXES)}) in this folder")
    cache_dir.mkdir(parents=True, exist_ok=True)
    stats, caches = _track_videos([(v.stem, v) for v in videos], cache_dir, cache_dir / "track_failures.json", progress)
    return [load_track(c) for c in caches], stats


def _track_videos(videos: list[tuple[str, Path]], cache_dir: Path, failures_path: Path,
                  progress: Callable[[int, int, str], None] | None, refresh: bool = False) -> tuple[dict, list[Path]]:
    """Track each (name, video) without a fresh cache in ``cache_dir``; the counts and the caches there now."""
    from ..video.errors import VideoError
    from ..video.track import track_video

    stats = {"videos": len(videos), "tracked": 0, "cached": 0, "failed": 0, "frames": 0, "seconds": 0.0}
    known_failures = {} if refresh or not failures_path.is_file() else json.loads(failures_path.read_text())
    failures: dict[str, str] = {}
    caches: list[Path] = []
    for i, (name, video) in enumerate(videos):
        cache = cache_dir / (video.stem + TRACK_SUFFIX)
        if not video.is_file():
            continue
        if name in known_failures:  # tracked before without a face: not again (``refresh`` retries)
            failures[name] = known_failures[name]
            stats["failed"] += 1
        elif not refresh and _cache_is_fresh(cache, video):
            stats["cached"] += 1
            caches.append(cache)
        else:
            start = time.perf_counter()
            try:
                track = track_video(video, with_audio=False)
            except VideoError as exc:
                failures[name] = str(exc)
                stats["failed"] += 1
                continue
            save_track(track, cache, video)
            caches.append(cache)
            stats["tracked"] += 1
            stats["frames"] += track.n_frames
            stats["seconds"] += time.perf_counter() - start
        if progress is not None:
            progress(i + 1, len(videos), name)
    failures_path.write_text(json.dumps(failures, indent=1))
    stats["seconds"] = round(stats["seconds"], 1)
    return stats, caches


def load_video_examples(corpus_dir: str | Path, splits: tuple[str, ...] = ("train",),
                        kinds: tuple[str, ...] | None = None) -> list[VideoExample]:
    """The corpus's tracked videos in ``splits`` (``"train"``, ``"heldout"``) with their ground truth.
    Needs :func:`build_track_cache` first; videos without a cache are skipped."""
    from ..clip import load_clip

    corpus_dir = Path(corpus_dir)
    out: list[VideoExample] = []
    clips: dict[str, object] = {}
    for entry in read_manifest(corpus_dir)["clips"]:
        if entry["split"] not in splits or (kinds is not None and entry["kind"] not in kinds):
            continue
        cache = corpus_dir / (Path(entry["video"]).stem + TRACK_SUFFIX)
        if not cache.is_file():
            continue
        if entry["clip"] not in clips:
            clips[entry["clip"]] = load_clip(corpus_dir / entry["clip"])
        clip = clips[entry["clip"]]
        track = load_track(cache)
        n = min(track.n_frames, clip.n_frames)
        track = _trim(track, n)
        out.append(VideoExample(
            name=entry["name"], index=int(entry["index"]), split=entry["split"], kind=entry["kind"],
            label=entry.get("label"), relit=entry.get("relit_of") is not None, track=track,
            units=np.asarray(clip.expression[:n], np.float32), rotation=np.asarray(clip.global_rotation[:n], np.float32),
            apex_frame=entry.get("info", {}).get("apex_frame"), unit_names=tuple(clip.expression_names)))
    return out


def _trim(track: TrackArrays, n: int) -> TrackArrays:
    if track.n_frames == n:
        return track
    return TrackArrays(track.source, track.fps, track.width, track.height,
                       *(getattr(track, name)[:n] for name in TRACK_ARRAYS),
                       face_crops=None if track.face_crops is None else track.face_crops[:n])


def is_validation(index: int, share: float = VALIDATION_SHARE) -> bool:
    """Deterministic validation subset of the training entries (by entry index)."""
    u = np.random.default_rng(np.random.SeedSequence([int(index), 0xFA11])).random()
    return bool(u < share)
