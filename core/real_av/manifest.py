"""A manifest of real talking-face clips: where each comes from, its license, speaker, transcript and checksum.

The clips themselves are not shipped (most licenses do not allow it); the manifest names each file's public
source so a user can assemble the folder (``data heldout`` does it from local clones, :mod:`.assemble`), and its
sha256 proves the folder holds exactly those files. A clip's phones come from one of three places, in this order: per-frame phone labels shipped with the clip
(``phone_labels``), or forced alignment of its ``transcript`` (GRID's known sentence, or a recognised and
checked one)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import LatticeTalkError

MANIFEST_FORMAT = "lattice_talk.real_av_manifest/1"


@dataclass(frozen=True)
class RealClip:
    name: str
    video: str  # file name inside the data folder
    sha256: str  # of the video file
    speaker: str  # one id per person: a split never puts one speaker on both sides
    split: str  # "dev": model and setting choices may read it; "test": read once, for the figures a model ships with
    source: str  # repository and path it was taken from
    license: str
    language: str = "en"
    audio: str | None = None  # a separate sound file when the video has none
    audio_sha256: str | None = None
    transcript: str | None = None
    transcript_source: str = ""  # "grid_grammar", "recognized", "recognized+corrected"
    phone_labels: str | None = None  # JSON list of per-video-frame ARPAbet indices (phone_index order)
    phone_labels_sha256: str | None = None
    phone_index: tuple[str, ...] = ()
    same_recording: str | None = None  # another clip of the same recording, whose own A/V offset anchors this one's

    def files(self) -> list[tuple[str, str | None]]:
        """(file name in the data folder, its sha256 or None where the manifest records none) of every file the
        clip names: the video, a separate sound, phone labels."""
        return [(name, digest) for name, digest in ((self.video, self.sha256), (self.audio, self.audio_sha256),
                                                    (self.phone_labels, self.phone_labels_sha256)) if name is not None]


def load_manifest(path: str | Path) -> list[RealClip]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LatticeTalkError(f"{path}: cannot read the real-clip manifest ({exc})") from exc
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
        raise LatticeTalkError(f"{path}: not a LatticeTalk real-clip manifest (format {MANIFEST_FORMAT!r} expected)")
    index = tuple(data.get("phone_index", ()))
    clips = []
    for entry in data["clips"]:
        clips.append(RealClip(**{**entry, "phone_index": index if entry.get("phone_labels") else ()}))
    names = [c.name for c in clips]
    if len(set(names)) != len(names):
        raise LatticeTalkError(f"{path}: clip names repeat")
    speakers = {c.name: c.speaker for c in clips}
    for clip in clips:
        if clip.same_recording is not None and (clip.same_recording == clip.name
                                                or speakers.get(clip.same_recording) != clip.speaker):
            raise LatticeTalkError(f"{path}: {clip.name}'s same_recording {clip.same_recording!r} is not another clip "
                                   f"of speaker {clip.speaker!r} in it; name one, or remove the field")
    dev, test = ({c.speaker for c in clips if c.split == s} for s in ("dev", "test"))
    if dev & test:
        raise LatticeTalkError(f"{path}: speakers {sorted(dev & test)} are in both the dev and the test split")
    return clips


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_folder(clips: list[RealClip], folder: str | Path) -> None:
    """Every file the manifest names is in ``folder`` with its recorded sha256 — else one error listing them."""
    folder = Path(folder)
    problems = []
    for clip in clips:
        for name, digest in clip.files():
            path = folder / name
            if not path.is_file():
                problems.append(f"{name} is missing (from {clip.source})")
            elif digest is not None and sha256_of(path) != digest:
                problems.append(f"{name} differs from the manifest's (sha256 mismatch; take it unchanged from {clip.source})")
    if problems:
        raise LatticeTalkError(f"{folder}: " + "; ".join(problems))
