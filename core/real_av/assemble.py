"""Assemble a manifest's folder from local copies of its public sources, by checksum.

The manifest (:mod:`.manifest`) names each file's source repository and its sha256. A user clones those
repositories (or has them as bare mirrors) and points this at them: every file whose sha256 the manifest wants is
copied into the folder under the manifest's name for it. Git history is read too, because some sources dropped
their files in later commits (the GRID sentences of ``arielephrat/vid2speech``), and a mirror that lacks some
objects is read commit by commit (``git rev-list --objects`` stops at the first missing one). Nothing is
downloaded; a file that is nowhere is listed with the source to take it from."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Callable, Iterator

from ..errors import LatticeTalkError
from .manifest import RealClip, sha256_of

MEDIA_SUFFIXES = (".mp4", ".mpg", ".mpeg", ".mov", ".avi", ".mkv", ".wav", ".flac", ".json")


def wanted_files(clips: list[RealClip]) -> dict[str, tuple[str, str]]:
    """sha256 → (file name in the folder, the source to take it from), for every file the clips name."""
    return {digest: (name, clip.source) for clip in clips for name, digest in clip.files() if digest is not None}


def assemble_folder(clips: list[RealClip], sources: list[str | os.PathLike[str]], out: str | os.PathLike[str],
                    progress: Callable[[str], None] = lambda s: None) -> dict:
    """Copy every file the clips name from ``sources`` (git repositories, bare or not, and plain folders) into
    ``out``. Files already there with the right sha256 stay. → {"found": names written or kept, "missing": lines
    naming each file and its source}."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = wanted_files(clips)
    todo = {digest: entry for digest, entry in wanted.items()
            if not ((out / entry[0]).is_file() and sha256_of(out / entry[0]) == digest)}
    found = [wanted[d][0] for d in wanted if d not in todo]
    for source in sources:
        if not todo:
            break
        progress(f"reading {source}")
        for data in _media_files(Path(source)):
            digest = hashlib.sha256(data).hexdigest()
            if digest in todo:
                name = todo.pop(digest)[0]
                _write_atomic(out / name, data)
                found.append(name)
                progress(f"{name} ({len(found)}/{len(wanted)})")
    missing = [f"{name}: from {source}" for name, source in sorted(todo.values())]
    return {"found": sorted(found), "missing": missing}


def _media_files(source: Path) -> Iterator[bytes]:
    """The bytes of every media or label file in a folder, or in every commit of a git repository."""
    if not source.is_dir():
        raise LatticeTalkError(f"{source}: not a folder (give a clone of a source repository, or a folder of files)")
    if _is_git_repository(source):
        yield from _git_media_blobs(source)
        return
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.suffix.lower() in MEDIA_SUFFIXES:
            yield path.read_bytes()


def _is_git_repository(source: Path) -> bool:
    return (source / ".git").exists() or ((source / "HEAD").is_file() and (source / "objects").is_dir())


def _git(source: Path, *args: str, data: bool = False):
    return subprocess.run(["git", "-C", str(source), *args], capture_output=True, text=not data).stdout


def _git_media_blobs(source: Path) -> Iterator[bytes]:
    if shutil.which("git") is None:
        raise LatticeTalkError(f"{source} is a git repository, and reading it needs git on the PATH")
    seen = set()
    for commit in _git(source, "rev-list", "--all").split():
        for line in _git(source, "ls-tree", "-r", commit).splitlines():
            meta, _, path = line.partition("\t")
            parts = meta.split()
            if len(parts) != 3 or parts[1] != "blob" or parts[2] in seen:
                continue
            if Path(path).suffix.lower() in MEDIA_SUFFIXES:
                seen.add(parts[2])
                blob = _git(source, "cat-file", "blob", parts[2], data=True)
                if blob:  # a mirror may list a blob it does not hold
                    yield blob


def _write_atomic(path: Path, data: bytes) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as fh:
        fh.write(data)
    os.replace(fh.name, path)
