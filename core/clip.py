"""AnimationClip: the per-frame animation the compute layer produces and the Blender layer keys.

A clip holds optional channels, each a float32 array whose first axis is the frame (T). Rotations are
axis-angle (radians) in FLAME's frame, translation is in metres, eyelids and blink run from 0 (open)
to 1 (closed). Clips are stored as ``.npz`` (compact, exact) or ``.json`` (human-readable, exact for
float32 values too); both carry the metadata and the ``lattice_talk.clip/1`` format tag.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ClipError
from .rotations import slerp_track
from .head_model import JOINT_NAMES
from .validate import MAX_FRAME, frame_count, input_file, parse_json

CLIP_FILE_FORMAT = "lattice_talk.clip/1"
MIN_FPS, MAX_FPS = 1.0, 1000.0  # under 1 fps is a wrong header (frames seconds apart), and resampling it explodes

# Trailing shape of each channel after the frame axis, in canonical order; None is the expression
# width E, which the clip's expression_names fix.
CHANNEL_SHAPES: dict[str, tuple[int | None, ...]] = {
    "expression": (None,),
    "jaw": (3,),
    "neck": (3,),
    "global_rotation": (3,),
    "global_translation": (3,),
    "eye_L": (3,),
    "eye_R": (3,),
    "eyelids": (2,),
    "blink": (),
}
CHANNELS: tuple[str, ...] = tuple(CHANNEL_SHAPES)

# The rotation channels drive FLAME's joints; the root joint's rotation is the clip's global rotation.
JOINT_CHANNELS: dict[str, str] = dict(zip(JOINT_NAMES, ("global_rotation", "neck", "jaw", "eye_L", "eye_R")))
ROTATION_CHANNELS: tuple[str, ...] = tuple(JOINT_CHANNELS.values())

_CLIP_SUFFIXES = (".npz", ".json")
# What a file may make us hold: a take of MAX_FRAME frames with every channel and a wide expression basis fits.
MAX_CLIP_BYTES = 1 << 30
MAX_CLIP_JSON_BYTES = 256 << 20  # JSON clips are for reading by eye; parsing costs ~10× their size in memory
_METADATA_KEY = "metadata"  # npz member holding the JSON metadata; cannot clash with a channel name


@dataclass(eq=False)  # arrays make the generated __eq__ ambiguous; see __eq__ below
class AnimationClip:
    """Per-frame head animation at a fixed frame rate, placed at ``start_frame`` on the timeline.

    Arrays given as lists or other dtypes are converted to float32 on construction, then the clip is
    validated; every problem raises :class:`ClipError` naming the channel."""

    fps: float
    start_frame: int
    head_id: str
    expression: np.ndarray | None = None  # (T, E) in the head's expression units
    expression_names: tuple[str, ...] = ()  # (E,) required with expression
    jaw: np.ndarray | None = None  # (T, 3) axis-angle
    neck: np.ndarray | None = None  # (T, 3) axis-angle
    global_rotation: np.ndarray | None = None  # (T, 3) axis-angle
    global_translation: np.ndarray | None = None  # (T, 3) metres
    eye_L: np.ndarray | None = None  # (T, 3) axis-angle
    eye_R: np.ndarray | None = None  # (T, 3) axis-angle
    eyelids: np.ndarray | None = None  # (T, 2) left, right; 0 open .. 1 closed
    blink: np.ndarray | None = None  # (T,) 0 open .. 1 closed
    provenance: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable: models, hashes, settings, seed

    def __post_init__(self) -> None:
        self._coerce()
        self.validate()

    def _coerce(self) -> None:
        """Bring convertible inputs to the stored types so validate() only has to check them."""
        for name in CHANNELS:
            value = getattr(self, name)
            if value is None:
                continue
            try:
                setattr(self, name, np.asarray(value, dtype=np.float32))
            except (TypeError, ValueError) as exc:
                raise ClipError(f"channel {name!r}: cannot be read as a float32 array ({exc})") from exc
        if isinstance(self.expression_names, (list, tuple)):
            self.expression_names = tuple(self.expression_names)
        if isinstance(self.start_frame, np.integer):
            self.start_frame = int(self.start_frame)
        if isinstance(self.fps, (int, float, np.integer, np.floating)) and not isinstance(self.fps, bool):
            self.fps = float(self.fps)

    # ------------------------------------------------------------------ properties
    @property
    def n_frames(self) -> int:
        """Frame count T, shared by every channel."""
        return int(getattr(self, self.channels()[0]).shape[0])

    @property
    def duration(self) -> float:
        """Length in seconds; each frame lasts ``1 / fps``."""
        return self.n_frames / self.fps

    def channels(self) -> tuple[str, ...]:
        """Names of the channels present, in canonical order."""
        return tuple(name for name in CHANNELS if getattr(self, name) is not None)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AnimationClip):
            return NotImplemented
        return (
            (self.fps, self.start_frame, self.head_id, self.expression_names, self.provenance)
            == (other.fps, other.start_frame, other.head_id, other.expression_names, other.provenance)
            and self.channels() == other.channels()
            and all(np.array_equal(getattr(self, n), getattr(other, n)) for n in self.channels())
        )

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise :class:`ClipError` on the first field that breaks the schema."""
        _check_fps(self.fps, "fps")
        if not isinstance(self.start_frame, int) or isinstance(self.start_frame, bool):
            raise ClipError(f"start_frame must be an integer frame number, got {self.start_frame!r}")
        if not isinstance(self.head_id, str) or not self.head_id:
            raise ClipError(f"head_id must be a non-empty string naming the head the clip drives, got {self.head_id!r}")
        present = self.channels()
        if not present:
            raise ClipError(f"clip has no channels; give at least one of {', '.join(CHANNELS)}")
        n_frames = None
        for name in present:
            array = getattr(self, name)
            if not isinstance(array, np.ndarray) or array.dtype != np.float32:
                raise ClipError(f"channel {name!r}: must be a float32 numpy array, got {type(array).__name__}")
            tail = CHANNEL_SHAPES[name]
            if array.ndim != 1 + len(tail) or any(w is not None and w != a for w, a in zip(tail, array.shape[1:])):
                want = "×".join(["T", *("E" if w is None else str(w) for w in tail)])
                raise ClipError(f"channel {name!r}: shape {array.shape}, expected {want}")
            if array.shape[0] == 0:
                raise ClipError(f"channel {name!r}: has 0 frames; a clip needs at least one frame")
            if array.shape[0] > MAX_FRAME:
                raise ClipError(f"channel {name!r}: {array.shape[0]:,} frames, more than the {MAX_FRAME:,} Blender "
                                "can key")
            if n_frames is None:
                n_frames = array.shape[0]
            elif array.shape[0] != n_frames:
                raise ClipError(
                    f"channel {name!r}: has {array.shape[0]} frames but {present[0]!r} has {n_frames}; "
                    "all channels must cover the same frames"
                )
            finite = np.isfinite(array.reshape(array.shape[0], -1)).all(axis=1)
            if not finite.all():
                frame = int(np.argmin(finite))
                raise ClipError(f"channel {name!r}: non-finite value (NaN or inf) at frame {frame} (clip index, 0-based)")
        self._validate_expression_names()
        if not isinstance(self.provenance, dict):
            raise ClipError(f"provenance must be a dict, got {type(self.provenance).__name__}")
        try:
            json.dumps(self.provenance, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ClipError(f"provenance must be JSON-serialisable ({exc})") from exc

    def _validate_expression_names(self) -> None:
        names = self.expression_names
        if not isinstance(names, tuple) or not all(isinstance(n, str) for n in names):
            raise ClipError(f"expression_names must be a sequence of strings, got {names!r}")
        if self.expression is None:
            if names:
                raise ClipError("expression_names given without an expression channel; drop the names or add the channel")
            return
        width = self.expression.shape[1]
        if len(names) != width:
            raise ClipError(f"channel 'expression': {width} columns but {len(names)} expression_names; give one name per column")
        if len(set(names)) != len(names):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            raise ClipError(f"expression_names must be unique; repeated: {', '.join(duplicates)}")

    # ------------------------------------------------------------------ storage
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the clip as ``.npz`` or ``.json`` (by suffix), atomically: an existing file at
        ``path`` is replaced only once the new one is completely written."""
        path = Path(path)
        suffix = _clip_suffix(path)
        self.validate()
        # Temp file beside the target so os.replace stays on one filesystem (and so atomic); a plain
        # open() keeps the user's umask for the final file, unlike mkstemp's 0600.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "xb") as fh:
                if suffix == ".npz":
                    self._write_npz(fh)
                else:
                    fh.write(self._json_text().encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise ClipError(f"{path}: cannot write clip ({exc}); check the folder is writable and has space") from exc
        except BaseException:  # whatever stops the write, the earlier take stays and no temp file is left
            tmp.unlink(missing_ok=True)
            raise
        return path

    def _metadata(self) -> dict[str, Any]:
        return {
            "format": CLIP_FILE_FORMAT,
            "fps": self.fps,
            "start_frame": self.start_frame,
            "head_id": self.head_id,
            "expression_names": list(self.expression_names),
            "provenance": self.provenance,
        }

    def _write_npz(self, fh: Any) -> None:
        # A file object, not a name: numpy would append ".npz" to the temp file's name.
        arrays = {name: getattr(self, name) for name in self.channels()}
        arrays[_METADATA_KEY] = np.array(json.dumps(self._metadata(), allow_nan=False))
        np.savez_compressed(fh, **arrays)

    def _json_text(self) -> str:
        """Metadata one field a line, then each channel one frame a line."""
        lines = ["{"]
        lines += [f"  {json.dumps(k)}: {json.dumps(v, allow_nan=False)}," for k, v in self._metadata().items()]
        blocks = []
        for name in self.channels():
            # float32 → shortest decimal that reads back as the same float32, so JSON round-trips exactly.
            rows = getattr(self, name).astype(str).astype(np.float64).tolist()
            body = ",\n".join(f"      {json.dumps(row)}" for row in rows)
            blocks.append(f"    {json.dumps(name)}: [\n{body}\n    ]")
        lines.append('  "channels": {\n' + ",\n".join(blocks) + "\n  }")
        lines.append("}")
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ resampling
    def resample(self, fps: float) -> AnimationClip:
        """The clip at another frame rate, covering the same duration.

        Frame ``k`` of the result samples time ``k / fps``; times past the last source frame hold
        it. Rotations are slerped along the short arc, other channels interpolated linearly.
        ``start_frame`` is the clip's place on the timeline and is kept as is."""
        _check_fps(fps, "resample fps")
        fps = float(fps)
        if fps == self.fps:
            arrays = {name: getattr(self, name).copy() for name in self.channels()}
            return AnimationClip(**self._fields(arrays, _copy_json(self.provenance), self.fps))
        n_src = self.n_frames
        n_new = frame_count(max(1, round(self.duration * fps)), f"the clip at {fps:g} fps",
                            "shorten the clip or use a lower frame rate")
        # Sample positions in source-frame units; computed as k * src/new so coinciding frames land exactly.
        pos = np.minimum(np.arange(n_new, dtype=np.float64) * (self.fps / fps), n_src - 1)
        lo = np.minimum(np.floor(pos).astype(np.int64), max(n_src - 2, 0))
        hi = np.minimum(lo + 1, n_src - 1)
        weight = pos - lo
        arrays = {}
        for name in self.channels():
            src = getattr(self, name).astype(np.float64)
            if name in ROTATION_CHANNELS and n_src > 1:
                out = slerp_track(src, pos)
            else:
                w = weight.reshape((-1,) + (1,) * (src.ndim - 1))
                out = src[lo] * (1.0 - w) + src[hi] * w
            arrays[name] = out.astype(np.float32)
        provenance = _copy_json(self.provenance)
        provenance.setdefault("resampled", []).append(
            {"from_fps": self.fps, "to_fps": fps, "from_frames": n_src, "to_frames": n_new})
        return AnimationClip(**self._fields(arrays, provenance, fps))

    def _fields(self, arrays: dict[str, np.ndarray], provenance: dict[str, Any], fps: float) -> dict[str, Any]:
        return dict(fps=fps, start_frame=self.start_frame, head_id=self.head_id,
                    expression_names=self.expression_names, provenance=provenance, **arrays)


def load_clip(path: str | os.PathLike[str]) -> AnimationClip:
    """Read a clip written by :meth:`AnimationClip.save` (``.npz`` or ``.json``, by suffix)."""
    path = Path(path)
    suffix = _clip_suffix(path)
    if not path.exists():
        raise ClipError(f"{path}: no such clip file; check the path, or export the take again")
    input_file(path, "clip", "export the take again", ClipError)
    if suffix == ".npz":
        metadata, arrays = _read_npz(path)
    else:
        metadata, arrays = _read_json(path)
    if not isinstance(metadata, dict) or metadata.get("format") != CLIP_FILE_FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else None
        raise ClipError(f"{path}: not a LatticeTalk clip (format {found!r}, expected {CLIP_FILE_FORMAT!r}); export the take again")
    missing = [k for k in ("fps", "start_frame", "head_id") if k not in metadata]
    if missing:
        raise ClipError(f"{path}: clip metadata lacks {', '.join(missing)}; the file is damaged — export the take again")
    unknown = sorted(set(arrays) - set(CHANNELS))
    if unknown:
        raise ClipError(f"{path}: unknown channels {', '.join(unknown)}; the file is damaged or from a newer version")
    try:
        return AnimationClip(
            fps=metadata["fps"],
            start_frame=metadata["start_frame"],
            head_id=metadata["head_id"],
            expression_names=metadata.get("expression_names", ()),
            provenance=metadata.get("provenance", {}),
            **arrays,
        )
    except ClipError as exc:
        raise ClipError(f"{path}: {exc}; fix the file or export the take again") from exc


def _read_npz(path: Path) -> tuple[Any, dict[str, np.ndarray]]:
    # np.load raises ValueError for bytes that are no archive (reading them would need pickle), the
    # others for truncated or damaged zips, some only when a member is read.
    errors = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)
    damaged = f"{path}: cannot read clip (the .npz file is truncated or damaged); export the take again"
    try:
        data = np.load(path, allow_pickle=False)
    except errors as exc:
        raise ClipError(f"{damaged} [{type(exc).__name__}: {exc}]") from exc
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ClipError(f"{path}: a single .npy array, not a clip archive; export the take again")
    with data:
        if _METADATA_KEY not in data.files:
            raise ClipError(f"{path}: .npz archive without clip metadata; not a LatticeTalk clip — export the take again")
        try:
            _check_npz_sizes(path, data)  # from the members' headers, before any array is inflated
            arrays = {name: data[name] for name in data.files}
        except errors as exc:
            raise ClipError(f"{damaged} [{type(exc).__name__}: {exc}]") from exc
    raw = arrays.pop(_METADATA_KEY)
    if raw.shape != () or raw.dtype.kind != "U":
        raise ClipError(f"{path}: clip metadata is not a JSON string; the file is damaged — export the take again")
    return parse_json(raw.item(), f"{path}: clip metadata", "export the take again", ClipError), arrays


def _check_npz_sizes(path: Path, data: np.lib.npyio.NpzFile) -> None:
    """Refuse an archive whose arrays would inflate past MAX_FRAME frames or MAX_CLIP_BYTES (a small file can
    promise gigabytes), reading only the .npy headers."""
    total = 0
    for name in data.files:
        with data.zip.open(f"{name}.npy") as member:
            version = np.lib.format.read_magic(member)
            read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                           (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read_header is None:
                raise ValueError(f"member {name!r} has .npy format version {version}")
            shape, _, dtype = read_header(member)
        if name != _METADATA_KEY and shape and shape[0] > MAX_FRAME:
            raise ClipError(f"{path}: channel {name!r} holds {shape[0]:,} frames, more than the {MAX_FRAME:,} Blender "
                            "can key; the file is damaged, or split the take")
        total += math.prod(shape) * dtype.itemsize
    if total > MAX_CLIP_BYTES:
        raise ClipError(f"{path}: its arrays would take {total / 2**30:.1f} GiB, more than the "
                        f"{MAX_CLIP_BYTES / 2**30:g} GiB a clip may; the file is damaged, or split the take")


def _read_json(path: Path) -> tuple[Any, dict[str, Any]]:
    if path.stat().st_size > MAX_CLIP_JSON_BYTES:
        raise ClipError(f"{path}: {path.stat().st_size / 2**20:.0f} MiB of JSON, more than the "
                        f"{MAX_CLIP_JSON_BYTES / 2**20:g} MiB a .json clip may be; save long takes as .npz")
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ClipError(f"{path}: cannot read clip ({exc}); check its permissions") from exc
    document = parse_json(text, str(path), "fix the file or export the take again", ClipError)
    if not isinstance(document, dict):
        raise ClipError(f"{path}: clip JSON must be an object with metadata and \"channels\"; export the take again")
    channels = document.pop("channels", None)
    if not isinstance(channels, dict):
        raise ClipError(f"{path}: clip JSON lacks a \"channels\" object; fix the file or export the take again")
    return document, channels


def _copy_json(value: Any) -> Any:
    """Deep copy of JSON data, so a derived clip never shares provenance with its source."""
    return json.loads(json.dumps(value))


def _clip_suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in _CLIP_SUFFIXES:
        raise ClipError(f"{path}: unknown clip file type {path.suffix!r}; use a .npz or .json file name")
    return suffix


def _check_fps(fps: Any, what: str) -> None:
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)):
        raise ClipError(f"{what} must be a number, got {fps!r}")
    if not math.isfinite(fps) or not MIN_FPS <= fps <= MAX_FPS:
        raise ClipError(f"{what} must be positive, finite and within {MIN_FPS:g}–{MAX_FPS:g}, got {fps!r}")
