"""Errors of the video path. Each message names the file and the fix."""

from __future__ import annotations

from ..errors import LatticeTalkError

INSTALL_HINT = "pip install -c constraints.txt -e '.[video]' (or *Install dependencies* in LatticeTalk's add-on preferences)"


class VideoError(LatticeTalkError):
    """A reference video is missing, unreadable, a still image, too short, or shows no trackable face."""


class NoFaceError(VideoError):
    """The video decodes, but no face (or too few frames with a face) was found in it."""


class MissingDependencyError(VideoError):
    """A package of the ``video`` extra (OpenCV, MediaPipe, PyAV) is not installed."""


def missing_dependency(package: str, exc: BaseException) -> MissingDependencyError:
    """The error raised when an optional package of the ``video`` extra cannot be imported."""
    return MissingDependencyError(f"the video path needs the {package} package ({exc}); run: {INSTALL_HINT}")
