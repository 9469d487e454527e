"""Decode a reference video: frames with their timestamps (OpenCV), the frame grid with dropped frames, and
the audio track (PyAV: OpenCV cannot read audio).

Frames are decoded, downscaled and converted (RGB for the face mesh, grey for the optical flow) on a
reader thread, so decoding overlaps the analysis on the other core; OpenCV releases the GIL.
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import VideoError, missing_dependency

# Magic numbers of still-image formats: FFmpeg happily opens these as one-frame "videos".
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF87a", "GIF"), (b"GIF89a", "GIF"),
    (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"qoif", "QOI"),
)
_CONVERT_HINT = "convert it to MP4, e.g. `ffmpeg -i {name} -c:v libx264 -c:a aac {stem}_fixed.mp4`"


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    width: int  # pixels of the decoded frames, before any downscaling for analysis
    height: int
    fps: float  # the container's nominal rate (0 when it does not say)
    declared_frames: int  # what the container says (may be wrong or 0)


@dataclass(frozen=True)
class Frame:
    timestamp: float  # seconds, from the container's presentation time stamps
    rgb: np.ndarray  # (h, w, 3) uint8, downscaled to the analysis size
    gray: np.ndarray  # (h, w) uint8, same size


@dataclass(frozen=True)
class AudioTrack:
    samples: np.ndarray  # (N,) float32 mono, the channels averaged, at the file's own rate
    sample_rate: int  # Hz
    offset: float  # seconds: audio stream start minus video stream start (container metadata)


def import_cv2():
    try:
        import cv2
    except ImportError as exc:
        raise missing_dependency("opencv-contrib-python (cv2)", exc) from exc
    return cv2


def check_video_path(path: str | os.PathLike[str]) -> Path:
    """Reject what is certainly not a video before FFmpeg sees it, with a precise reason."""
    path = Path(path)
    if not path.exists():
        raise VideoError(f"{path}: video file not found; check the path")
    if path.is_dir():
        raise VideoError(f"{path}: is a folder, not a video; pick a video file (.mp4, .mov, .mkv, .avi, .webm)")
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise VideoError(f"{path}: cannot read the file ({exc}); check its permissions") from exc
    if not head:
        raise VideoError(f"{path}: the file is empty (0 bytes); copy or export the video again")
    for magic, kind in _IMAGE_SIGNATURES:
        if head.startswith(magic):
            raise VideoError(f"{path}: is a still {kind} image, not a video; pick a video of the speaker (.mp4, .mov, …)")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        raise VideoError(f"{path}: is a still WebP image, not a video; pick a video of the speaker (.mp4, .mov, …)")
    return path


def open_video(path: str | os.PathLike[str]):
    """(cv2.VideoCapture, VideoInfo) for a file that OpenCV's FFmpeg backend can open."""
    path = check_video_path(path)
    cv2 = import_cv2()
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise VideoError(
            f"{path}: cannot decode this file as video; it is damaged, incomplete or not a video — "
            + _CONVERT_HINT.format(name=path.name, stem=path.stem)
        )
    fps = cap.get(cv2.CAP_PROP_FPS)
    count = cap.get(cv2.CAP_PROP_FRAME_COUNT)
    info = VideoInfo(
        path=path,
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=float(fps) if math.isfinite(fps) and fps > 0 else 0.0,
        declared_frames=int(count) if math.isfinite(count) and count > 0 else 0,
    )
    return cap, info


def analysis_size(width: int, height: int, max_size: int) -> tuple[int, int]:
    """Frame size used for the analysis: the longer side at most ``max_size`` pixels, aspect kept."""
    scale = min(1.0, max_size / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def read_frames(cap, max_size: int = 640, buffered: int = 8) -> Iterator[Frame]:
    """Yield every decodable frame (downscaled to :func:`analysis_size`) from a reader thread.

    Stops at the end of the stream or at the first frame that does not decode. Closing the generator
    (or leaving the loop) stops the thread and releases ``cap``."""
    cv2 = import_cv2()
    out: queue.Queue = queue.Queue(maxsize=buffered)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def reader() -> None:
        try:
            while not stop.is_set():
                ok, bgr = cap.read()
                if not ok or bgr is None:
                    break
                stamp = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
                h, w = bgr.shape[:2]
                size = analysis_size(w, h, max_size)
                if size != (w, h):
                    bgr = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA)
                if not put(Frame(stamp, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY))):
                    return
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, raised there
            put(exc)
            return
        put(end)

    thread = threading.Thread(target=reader, name="lattice_talk video decode", daemon=True)
    thread.start()
    try:
        while True:
            item = out.get()
            if item is end:
                return
            if isinstance(item, Exception):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()
        cap.release()


def frame_grid(timestamps: np.ndarray, nominal_fps: float) -> tuple[float, np.ndarray, list[int]]:
    """Place decoded frames on a regular grid: (fps, slot index of each decoded frame, dropped slots).

    The frame interval is the median gap between time stamps (the container's nominal rate when they
    agree within 2 %, since a variable-rate file's *average* rate is not its frame interval). A gap of
    k intervals means k − 1 dropped frames. Without usable time stamps the frames are taken as
    consecutive at the nominal rate."""
    n = len(timestamps)
    gaps = np.diff(timestamps)
    consecutive = np.arange(n)
    if n < 2 or not np.all(np.isfinite(timestamps)) or np.any(gaps <= 0):
        return (nominal_fps or 25.0), consecutive, []
    interval = float(np.median(gaps))
    fps = nominal_fps if nominal_fps > 0 and abs(nominal_fps * interval - 1.0) < 0.02 else 1.0 / interval
    slots = np.round((timestamps - timestamps[0]) * fps).astype(np.int64)
    if np.any(np.diff(slots) < 1):  # jittery stamps that collide on the grid: trust the order instead
        return fps, consecutive, []
    dropped = sorted(set(range(int(slots[-1]) + 1)) - set(slots.tolist()))
    return fps, slots, dropped


def read_audio_track(path: str | os.PathLike[str]) -> AudioTrack | None:
    """The first audio stream of a video as mono float32 at its own rate; None when there is none.

    Raises :class:`VideoError` when the stream exists but cannot be decoded."""
    path = Path(path)
    try:
        import av
    except ImportError as exc:
        raise missing_dependency("av (PyAV)", exc) from exc
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            rate = int(stream.rate or stream.codec_context.sample_rate)
            # Planar float keeps the channels apart; averaging them here avoids FFmpeg's downmix, which
            # adds the two channels of a stereo file at −3 dB each (√2 louder than their mean, can clip).
            planar = av.AudioResampler(format="fltp", rate=rate)
            chunks = []
            for frame in container.decode(stream):
                chunks.extend(f.to_ndarray().mean(axis=0) for f in planar.resample(frame))
            chunks.extend(f.to_ndarray().mean(axis=0) for f in planar.resample(None))
            offset = _start(stream) - (_start(container.streams.video[0]) if container.streams.video else 0.0)
    except av.FFmpegError as exc:
        raise VideoError(
            f"{path}: cannot decode the audio track ({exc}); " + _CONVERT_HINT.format(name=path.name, stem=path.stem)
        ) from exc
    samples = np.concatenate(chunks).astype(np.float32, copy=False) if chunks else np.zeros(0, np.float32)
    return AudioTrack(samples, rate, offset)


def _start(stream) -> float:
    return float(stream.start_time * stream.time_base) if stream.start_time is not None and stream.time_base else 0.0
