"""Re-running ``generate``: an existing output is kept only when it can be read and records this very run.

A run is what decides the result: the inputs' bytes (sha256 of the audio, and of the reference video when
there is one, and of the transcript when there is one), the model's bytes, the settings, the head, the take name and the LatticeTalk version. Each
output records its run (a clip in its provenance, a .blend on its scene, both under ``RUN_KEY``); a re-run
compares the two and regenerates on any difference, saying which.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

RUN_KEY = "lattice_talk_run"
_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def folder_sha256(folder: str | Path) -> str:
    """One digest over every file under ``folder`` (relative names and bytes), its documentation aside (*.md and
    the speech model's build recipe, ``recipe.json``): editing how a model is described or rebuilt does not change
    what it computes."""
    folder = Path(folder)
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*")
                       if p.is_file() and p.suffix.lower() != ".md" and p.name != "recipe.json"):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + file_sha256(path).encode())
    return digest.hexdigest()


def run_record(inputs: dict[str, Path | None], model: dict, settings: dict, head: str, take: str,
               texts: dict[str, str | None] | None = None) -> dict:
    """The run as recorded in an output. ``inputs``: role → file (None: not given); ``texts``: role → text given
    directly, such as a transcript (None: not given); ``model``: JSON-ready identity of the models (digests);
    ``head``: 'default' or a head file (recorded by its digest)."""
    from .version import __version__

    digests = {role: None if path is None else file_sha256(path) for role, path in inputs.items()}
    digests.update({role: None if text is None else hashlib.sha256(text.encode()).hexdigest()
                    for role, text in (texts or {}).items()})
    return {
        "version": __version__,
        "inputs": dict(sorted(digests.items())),
        "model": model,
        "settings": settings,
        "head": head if head == "default" else {"file": Path(head).name, "sha256": file_sha256(head)},
        "take": take,
    }


def what_changed(recorded: dict | None, wanted: dict) -> str | None:
    """None when ``recorded`` is the run ``wanted``; otherwise why the output must be made again."""
    if not isinstance(recorded, dict):
        return "it cannot be read or records no run"
    if recorded.get("version") != wanted["version"]:
        return f"made by LatticeTalk {recorded.get('version')}, this is {wanted['version']}"
    for role, digest in wanted["inputs"].items():
        if recorded.get("inputs", {}).get(role) != digest:
            return f"the {role} changed"
    if recorded.get("inputs", {}).keys() != wanted["inputs"].keys():
        return "the inputs changed"
    if recorded.get("model") != wanted["model"]:
        return "the model changed"
    old, new = recorded.get("settings", {}), wanted["settings"]
    changed = sorted(key for key in new.keys() | old.keys() if old.get(key) != new.get(key))
    if changed:
        return "settings changed: " + ", ".join(f"{key} {old.get(key)} → {new.get(key)}" for key in changed)
    if recorded.get("head") != wanted["head"]:
        return "the head changed"
    if recorded.get("take") != wanted["take"]:
        return f"the take name changed ({recorded.get('take')} → {wanted['take']})"
    return None
