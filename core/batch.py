"""Batches over many inputs: expand folders/globs, plan outputs, skip finished work, keep a manifest.

A pipeline TD runs hundreds of files; one bad file must not stop the rest, and a re-run after an
interruption must pick up where it stopped (the work decides what is up to date: core.rerun). The manifest
(JSON, rewritten after every item) records each input's status, output, note, error and time.
"""

from __future__ import annotations

import glob
import json
import os
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable

from .errors import LatticeTalkError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3")
OUTPUT_SUFFIXES = (".npz", ".json", ".blend")


@dataclass
class BatchItem:
    input: str
    output: str
    status: str = "pending"  # pending | done | rendered (an up-to-date .blend's preview only) | skipped | failed
    note: str = ""  # why it was skipped or made again
    error: str = ""
    seconds: float = 0.0
    attempts: int = 0  # times it was started: more than 1 when a farm worker died with it and it ran again
    worker: str = ""  # the farm worker that finished it; "" on one machine


def expand_inputs(specs: Iterable[str], suffixes: tuple[str, ...] = AUDIO_SUFFIXES) -> list[Path]:
    """Files as given; folders → their files with ``suffixes`` (sorted); anything with * ? [ → a glob."""
    found: list[Path] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if any(ch in spec for ch in "*?["):
            found += sorted(Path(p) for p in glob.glob(os.path.expanduser(spec)) if Path(p).suffix.lower() in suffixes)
        elif path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
        else:
            found.append(path)  # a missing file fails as its own item, with its own message
    if not found:
        raise LatticeTalkError(f"no input files matched {', '.join(specs)} (looked for {', '.join(suffixes)})")
    return found


def plan_outputs(inputs: list[Path], out: Path, fmt: str) -> list[BatchItem]:
    """One input and an ``out`` with an output suffix → that file; otherwise ``out/<stem>.<fmt>``."""
    if len(inputs) == 1 and out.suffix.lower() in OUTPUT_SUFFIXES:
        return [BatchItem(str(inputs[0]), str(out))]
    if out.suffix.lower() in OUTPUT_SUFFIXES:
        raise LatticeTalkError(f"{out}: several inputs need an output folder, not a file")
    stems = [p.stem for p in inputs]
    clashes = sorted({s for s in stems if stems.count(s) > 1})
    if clashes:
        raise LatticeTalkError(f"inputs share file names ({', '.join(clashes)}); their outputs in {out} would overwrite each other")
    return [BatchItem(str(p), str(out / f"{p.stem}.{fmt}")) for p in inputs]


def write_manifest(items: list[BatchItem], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({"items": [asdict(i) for i in items]}, indent=2))
    os.replace(tmp, path)


def run_item(item: BatchItem, work: Callable[[BatchItem], str],
             log: Callable[[str], None] | None = None) -> BatchItem:
    """Run ``work`` on ``item`` (it returns the item's status and may set its note); a failure is recorded on the
    item, not raised. The one place an item is run, on one machine and on a farm worker alike."""
    start = time.monotonic()
    try:
        item.status = work(item)
    except LatticeTalkError as exc:
        item.status, item.error = "failed", str(exc)
    except Exception as exc:  # a bug: keep going, keep the traceback in the log
        item.status, item.error = "failed", (f"unexpected error, a bug in LatticeTalk ({exc!r}): please report it "
                                             "with the traceback in the batch log")
        if log is not None:
            log(traceback.format_exc())
    item.seconds = round(time.monotonic() - start, 3)
    item.attempts += 1
    return item


class BatchRecord:
    """A batch's account as its items finish, in any order: a line each in the log and the manifest rewritten (every
    item, finished or still pending, in input order), so an interrupted batch leaves a true manifest behind."""

    def __init__(self, items: list[BatchItem], manifest: Path | None = None,
                 log: Callable[[str], None] | None = None):
        self.items, self.manifest, self.log = items, manifest, log

    def finished(self, item: BatchItem) -> None:
        if self.log is not None:
            self.log(" ".join(filter(None, (f"{item.status:8s}", item.input, "->", item.output, item.note, item.error))))
        if self.manifest is not None:
            write_manifest(self.items, self.manifest)


def run_batch(record: BatchRecord, work: Callable[[BatchItem], str],
              on_item: Callable[[BatchItem], None] | None = None) -> list[BatchItem]:
    """Run ``work`` on each item of ``record`` in turn; failures are recorded and the batch goes on."""
    for item in record.items:
        run_item(item, work, record.log)
        record.finished(item)
        if on_item is not None:
            on_item(item)
    return record.items
