"""Bad inputs made on the spot with fixed seeds: audio, videos, clips, presets and speech-model folders that are
damaged, hostile or merely wrong, for the bad-input corpus and the fuzz test. Each maker writes into a folder
and returns the path; nothing is downloaded."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import struct
import zipfile
from pathlib import Path

import numpy as np

from lattice_talk.core.clip import CLIP_FILE_FORMAT

RATE = 16000
SPEECH_MODEL = Path(__file__).resolve().parents[1] / "vendor_models" / "speech"


def speech_like(seconds: float = 1.0, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """A voiced buzz with a syllable rhythm and a little noise: enough like speech for the pipeline to run."""
    t = np.arange(int(seconds * rate)) / rate
    rng = np.random.default_rng(seed)
    voice = np.sign(np.sin(2 * np.pi * 140 * t)) * 0.2 + 0.05 * rng.standard_normal(t.size)
    return (voice * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)).astype(np.float32)


def wav(path: Path, samples: np.ndarray | None = None, rate: int = RATE, subtype: str = "PCM_16") -> Path:
    import soundfile

    soundfile.write(str(path), speech_like() if samples is None else samples, rate, subtype=subtype)
    return path


def wav_with_header_rate(path: Path, rate: int) -> Path:
    """A valid 16-bit WAV whose header states ``rate`` (any number, e.g. 3 Hz), written by hand."""
    data = (speech_like() * 32767).astype("<i2").tobytes()
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(data), b"WAVE", b"fmt ", 16, 1, 1, rate, rate * 2, 2,
                         16, b"data", len(data))
    path.write_bytes(header + data)
    return path


def random_bytes(path: Path, size: int = 4096, seed: int = 0) -> Path:
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def text(path: Path, body: str = "hello world\n" * 50) -> Path:
    path.write_text(body)
    return path


PNG_BYTES = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000")  # a PNG's first bytes


def image(path: Path) -> Path:
    path.write_bytes(PNG_BYTES + bytes(64))
    return path


def video(path: Path, frames: int = 25, face: bool = True, size: int = 128) -> Path:
    """An MPEG-4 video without sound: the shipped talking head's first frames, or a flat grey picture."""
    import cv2

    from real_media import TALKING_HEAD

    cap = cv2.VideoCapture(str(TALKING_HEAD))
    pictures = []
    for _ in range(frames):
        ok, frame = cap.read()
        pictures.append(frame if face and ok else np.full((size, size, 3), 90, np.uint8))
    cap.release()
    h, w = pictures[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (w, h))
    for frame in pictures:
        writer.write(frame)
    writer.release()
    return path


# ------------------------------------------------------------------ clips


def clip_metadata(**changes) -> dict:
    meta = {"format": CLIP_FILE_FORMAT, "fps": 30.0, "start_frame": 1, "head_id": "lattice_talk:default_head",
            "expression_names": [], "provenance": {}}
    meta.update(changes)
    return meta


def json_clip(path: Path, frames: int = 30, **changes) -> Path:
    document = clip_metadata(**changes)
    document.setdefault("channels", {"jaw": [[0.1, 0.0, 0.0]] * frames})
    path.write_text(json.dumps(document))
    return path


def npz_clip(path: Path, arrays: dict[str, np.ndarray] | None = None, metadata: str | None = None) -> Path:
    arrays = {"jaw": np.zeros((30, 3), np.float32)} if arrays is None else arrays
    with open(path, "wb") as fh:
        np.savez_compressed(fh, metadata=np.array(json.dumps(clip_metadata()) if metadata is None else metadata),
                            **arrays)
    return path


def npz_inflating(path: Path, channel: str = "jaw", shape: tuple[int, ...] = (2_000_000, 3),
                  written: int | None = None) -> Path:
    """A clip archive of a few KB whose ``channel`` inflates to ``shape`` float32 zeros (zeros compress to nothing;
    the member is written in blocks, never held whole). ``written``: only that many bytes of data follow the
    header (a header promising more than the file holds)."""
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.npy", _npy(np.array(json.dumps(clip_metadata()))))
        with archive.open(f"{channel}.npy", "w", force_zip64=True) as member:
            member.write(_npy_header(header))
            block, left = bytes(1 << 20), int(np.prod(shape)) * 4 if written is None else written
            while left:
                member.write(block[:min(left, len(block))])
                left -= min(left, len(block))
    return path


def _npy(array: np.ndarray) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npy_header(header: dict) -> bytes:
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()  # the magic string, version 1.0 and the header


def deep_json(depth: int = 100_000) -> str:
    return "[" * depth + "]" * depth


# ------------------------------------------------------------------ speech-model folders


def speech_model_copy(folder: Path) -> Path:
    """The shipped speech model copied, so one file of it can be damaged."""
    return Path(shutil.copytree(SPEECH_MODEL, folder))


def edit_decoder_json(folder: Path, edit) -> Path:
    path = folder / "decoder.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    return folder


# ------------------------------------------------------------------ checking "nothing changed"


def files_state(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder``: kind, and for regular files size and sha256 — compare before and after a run
    to prove it wrote, changed and removed nothing."""
    state = {}
    for path in sorted(folder.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISREG(mode):
            state[str(path.relative_to(folder))] = ("file", path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
        else:
            state[str(path.relative_to(folder))] = ("dir" if stat.S_ISDIR(mode) else "other",)
    return state
