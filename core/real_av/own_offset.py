"""A file's own A/V offset — how late its picture is against its own sound — as far as evidence without any model
gives it: its lips' bilabial releases where enough of them agree (:mod:`.lip_release`); else, for a clip that names
another file of the same recording (the manifest's ``same_recording``), that file's offset (its releases', or 0
where they say nothing) moved by the two files' measured difference in sync (:mod:`.same_recording`); else unknown,
which the measures take as 0. `speech eval-real`, `video eval-real` and `video eval-offset` all read it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .lip_release import ReleaseSync, clip_release_sync
from .manifest import RealClip


@dataclass(frozen=True)
class OwnOffset:
    frames: float | None  # video frames, to a fraction; None: unknown
    source: str  # "releases", "same recording as NAME (...)" or "unknown"

    @property
    def whole_frames(self) -> int | None:
        return None if self.frames is None else int(round(self.frames))

    @property
    def offset(self) -> float:
        """The offset in frames, 0 where unknown."""
        return 0.0 if self.frames is None else self.frames


def own_offset(clip: RealClip, releases: ReleaseSync, manifest: list[RealClip], folder: str | Path,
               cache_dir: str | Path | None = None) -> OwnOffset:
    """``clip``'s :class:`OwnOffset` from its own ``releases`` (:func:`~.lip_release.clip_release_sync`) or, where
    they say nothing, from the clip of the ``manifest`` (all of it, not only the clips measured) it names as the
    same recording."""
    if releases.frames is not None:
        return OwnOffset(releases.median, "releases")
    twin = next((other for other in manifest if other.name == clip.same_recording), None)
    if twin is None:
        return OwnOffset(None, "unknown")
    from ..errors import LatticeTalkError
    from .manifest import check_folder
    from .same_recording import align_recordings

    folder = Path(folder)
    try:
        check_folder([twin], folder)  # its files are read too
        alignment = align_recordings(folder / twin.video, folder / clip.video,
                                     twin.audio and folder / twin.audio, clip.audio and folder / clip.audio)
        twin_releases = clip_release_sync(twin, folder, cache_dir)
    except LatticeTalkError as exc:  # (NotSameRecording is one)
        raise LatticeTalkError(f"{clip.name}'s own offset is read against {twin.name}, the clip its manifest entry "
                               f"names as the same recording: {exc}") from exc
    anchor = twin_releases.offset  # the twin's frames; 0 where its releases say nothing
    there = f"{anchor:+.2f} frames there" if twin_releases.frames is not None else "0 assumed there: its releases give none"
    difference = alignment.offset_difference * alignment.fps_b
    return OwnOffset(anchor / alignment.fps_a * alignment.fps_b + difference,
                     f"same recording as {twin.name} ({there}; {difference:+.2f} here against it)")
