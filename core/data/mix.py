"""One training folder from several corpora: their shards linked in, a corpus's training shards as many times
as it should weigh, so a small real corpus is drawn as often as a large synthetic one.

Training draws windows from shards uniformly over utterances, so a corpus linked twice is drawn twice as often.
The folder holds symbolic links and a ``corpus.json`` that names every part; nothing is copied."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import LatticeTalkError
from .corpus import CORPUS_FILE, Corpus

MIX_FORMAT = "lattice_talk.corpus_mix/1"


@dataclass(frozen=True)
class MixPart:
    corpus: Path
    copies: int = 1  # how many times its training shards are linked (0: early-stopping shards only)
    heldout: bool = True  # whether its held-out shards join the early-stopping split


def parse_part(text: str, heldout: bool = True) -> MixPart:
    """``DIR`` or ``DIR*N`` (its training shards N times) → a :class:`MixPart`."""
    path, _, copies = text.rpartition("*") if "*" in text else (text, "", "1")
    if not copies.isdigit() or not 0 <= int(copies) <= 100:
        raise LatticeTalkError(f"{text}: write a corpus folder as DIR or DIR*N with N copies from 0 to 100")
    return MixPart(Path(path), int(copies), heldout)


def mix_corpora(parts: list[MixPart], out: str | Path) -> dict:
    """Link the parts' shards into ``out`` (an empty or earlier mix folder) and write its ``corpus.json``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not _is_mix(out):
        raise LatticeTalkError(f"{out}: not empty and not a corpus mix; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.npz"):  # an earlier mix of this folder: its links only
        if old.is_symlink():
            old.unlink()
    summary = {"format": MIX_FORMAT, "parts": [], "hours": {"train": 0.0, "heldout": 0.0}}
    for k, part in enumerate(parts):
        corpus = Corpus(part.corpus)  # refuses a folder that is not a corpus
        hours = corpus.summary.get("hours", {})
        for copy in range(part.copies):
            for shard in corpus.shards("train"):
                os.symlink(shard.resolve(), out / f"train-p{k}c{copy}-{shard.name}")
        if part.heldout:
            for shard in corpus.shards("heldout"):
                os.symlink(shard.resolve(), out / f"heldout-p{k}-{shard.name}")
        summary["parts"].append({"corpus": str(part.corpus.resolve()), "copies": part.copies, "heldout": part.heldout,
                                 "hours": hours})
        summary["hours"]["train"] += part.copies * float(hours.get("train", 0.0))
        summary["hours"]["heldout"] += float(hours.get("heldout", 0.0)) if part.heldout else 0.0
    if not any(out.glob("train-*.npz")) or not any(out.glob("heldout-*.npz")):
        raise LatticeTalkError(f"{out}: the mix needs training and held-out shards; give a part with copies ≥ 1 and one "
                               "whose held-out shards are kept")
    summary["hours"] = {split: round(h, 4) for split, h in summary["hours"].items()}
    (out / CORPUS_FILE).write_text(json.dumps(summary, indent=2))
    return summary


def _is_mix(folder: Path) -> bool:
    try:
        return json.loads((folder / CORPUS_FILE).read_text()).get("format") == MIX_FORMAT
    except (OSError, ValueError, AttributeError):
        return False
