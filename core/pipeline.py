"""The generate pipeline interface: (audio [+ video], head, settings) → AnimationClip.

The Blender operator, the CLI and the batch runner only talk to this interface; :mod:`.pipeline_registry` says
which pipeline runs. This module sits below everything that uses it: it imports no pipeline.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from .clip import AnimationClip
from .errors import LatticeTalkError
from .head_model import HeadModel
from .validate import MAX_FRAME

MIN_FPS, MAX_FPS = 1.0, 240.0  # a take is keyed per frame: beyond this, frames outnumber what any rig shows
MAX_VIDEO_OFFSET_SECONDS = 600.0  # a given reference-video offset: a video recorded apart from its sound (see fusion)
ProgressFn = Callable[[str, float], None]  # (stage description, overall fraction 0..1)
StopFn = Callable[[], bool]  # True once the caller asked to stop
WARNINGS_KEY = "warnings"  # a clip's provenance: what was usable but worth telling the user (clipped audio, …)


class Cancelled(Exception):
    """Raised inside a pipeline between steps when its stop function says so. Not an error."""


@dataclass
class GenerateSettings:
    intensity: float = 1.0  # scales expression motion (0 = neutral face, 1 = as predicted)
    head_motion: float = 1.0  # scales predicted head pose
    blinks: bool = True
    fps: float = 30.0
    start_frame: int = 1
    seed: int = 0
    recognize_words: bool = False  # no transcript: recognise the words to time the p/b/m closures (core.speech.transcript)
    video_offset: float | None = None  # seconds the reference video is late against the sound; None: estimated

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class GenerateRequest:
    audio_path: Path
    head: HeadModel
    video_path: Path | None = None
    settings: GenerateSettings = field(default_factory=GenerateSettings)
    video_model: Path | None = None  # video face model folder (video_model.safetensors) for the video; None: the installed one
    transcript: str | None = None  # the line's words: forced alignment times its p/b/m closures (the audio still drives the rest)


class Pipeline(Protocol):
    name: str

    def prepare(self) -> None:
        """Heavy imports and model loading. Called on the main thread (torch must be imported there)."""

    def generate(self, request: GenerateRequest, progress: ProgressFn, should_stop: StopFn) -> AnimationClip:
        """Run the pipeline; call ``progress`` between steps and raise :class:`Cancelled` when
        ``should_stop()`` is true. Bad input raises :class:`LatticeTalkError` with a clear message."""


def clip_warnings(clip: AnimationClip, audio_path: Path) -> list[str]:
    """What the caller tells the user after a take is made from ``audio_path``: the pipeline's warnings (each names
    its file), a transcript it could not use, and a reference video placed at 0 s because its offset could not be
    told (the take is right if the video is in sync; if not, only the user knows by how much)."""
    transcript = clip.provenance.get("transcript", {})
    unused = [f"{audio_path}: transcript not used: {transcript['error']}"] if "error" in transcript else []
    video = clip.provenance.get("video", {})
    if video and not video.get("offset_reliable", True) and not video.get("offset_given", False):
        unused.append(f"{video['file']}: its offset against the sound could not be told from the lips, so it is "
                      "placed at 0 s; if it is not in sync with the sound, give the offset (--video-offset SECONDS, "
                      f"or untick the sidebar's Auto offset){_best_match_hint(video)}")
    return list(clip.provenance.get(WARNINGS_KEY, [])) + unused


def _best_match_hint(video: dict) -> str:
    """The declined estimate's best lag, as a starting point for the user: on the held-out test clips (`video
    eval-offset --with-separate-sound`, known shifts included) it lay within a frame of the truth in 23 of the 28
    declined cases — a hint worth checking, not an offset to apply unseen."""
    frames, fps = video.get("offset_best_frames", 0), video.get("offset_fps")
    if not frames or not fps:
        return ""
    return (f"; the lips match best with the video {abs(frames)} frame{'s' if abs(frames) != 1 else ''} "
            f"{'late' if frames > 0 else 'early'} ({frames / fps:+.3f} s), too weakly to be trusted: check it by eye")


def check_request(request: GenerateRequest) -> None:
    """Cheap checks every pipeline shares, run before any work: files exist and are files, a video is not a
    still image (the tracker's own check; a video without a face is found when it is tracked), the head has the
    landmark embedding the motion reaches it through."""
    from .heads import require_landmarks
    from .validate import input_file, number, whole_number

    require_landmarks(request.head)
    input_file(request.audio_path, "audio", "pick a .wav, .flac, .ogg or .mp3 file (or a video with sound)")
    if request.video_path is not None:
        from .video.decode import check_video_path

        input_file(request.video_path, "video", "pick a video file of the speaker (.mp4, .mov, …)")
        check_video_path(request.video_path)  # a still image or an empty file is refused here, before any work
    if request.video_model is not None:
        from .motion.face_models import VIDEO_MODEL_WEIGHTS

        if not (Path(request.video_model) / VIDEO_MODEL_WEIGHTS).is_file():
            raise LatticeTalkError(f"{request.video_model}: no {VIDEO_MODEL_WEIGHTS} there; pass a folder made by "
                                   "'video train' (e.g. vendor_models/video/meshconv)")
    settings = request.settings
    number(settings.intensity, "intensity", 0.0, 3.0, "give 0–3 (--intensity, or the sidebar's Intensity)")
    number(settings.head_motion, "head motion", 0.0, 3.0, "give 0–3 (--head-motion, or the sidebar's Head motion)")
    number(settings.fps, "frames per second", MIN_FPS, MAX_FPS,
           f"give {MIN_FPS:g}–{MAX_FPS:g} (--fps, or the scene's frame rate)")
    whole_number(settings.seed, "seed", 0, 2**32 - 1, "give a whole number from 0 to 4294967295 (--seed)")
    if settings.video_offset is not None:
        number(settings.video_offset, "video offset", -MAX_VIDEO_OFFSET_SECONDS, MAX_VIDEO_OFFSET_SECONDS,
               f"give seconds within ±{MAX_VIDEO_OFFSET_SECONDS:g} (--video-offset, or the sidebar's Offset), or leave "
               "it to the estimate")
    whole_number(settings.start_frame, "start frame", -MAX_FRAME, MAX_FRAME,
                 "give a frame Blender can key (the sidebar's Start frame)")
