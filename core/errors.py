"""Exceptions the add-on, the CLI and tests tell apart. Each message names the file and the fix."""


class LatticeTalkError(Exception):
    """Base class: a problem with the user's input or setup, reported as one clear message."""


class HeadModelError(LatticeTalkError):
    """A head file (FLAME or ours) is missing, malformed or inconsistent."""


class UnsafePickleError(HeadModelError):
    """A pickle asked for a global outside the small allow-list of the restricted unpickler."""


class ClipError(LatticeTalkError):
    """An AnimationClip is malformed or cannot be read or written."""


class AudioError(LatticeTalkError):
    """A speech audio file is missing, unreadable, empty, silent, too short or too long, or holds NaN/inf."""
