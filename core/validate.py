"""The one check every user value passes before any work: options, operator properties, input files, outputs,
JSON documents (clips, presets, model configs) and the sizes they promise.

Each failure is one :class:`LatticeTalkError` naming the file or option and the fix, raised before the scene,
an output or any model is touched. The limits are what a take can be (Blender keys at most ``MAX_FRAME``
frames), what speech audio is (a sample rate a microphone records, an hour at most) and what a hand-written or
exported JSON file needs; anything beyond them is a damaged or hostile file, not a longer take.
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import Any, Iterable

from .errors import LatticeTalkError

MAX_FRAME = 1_048_574  # Blender's MAXFRAME: scene and key frames beyond it are clamped
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 4_000, 768_000  # telephone speech … the fastest studio converters
MAX_JSON_DEPTH = 32  # clips, presets and configs nest a few levels; deeper is a damaged or hostile file
MAX_CONFIG_BYTES = 1 << 20  # a model's JSON config is a few KB; a MiB is not a config
MAX_JSON_INTEGER = 2**53  # larger integers lose precision as floats: no setting or frame number needs them


def number(value: Any, option: str, low: float, high: float, fix: str,
           error: type[LatticeTalkError] = LatticeTalkError) -> float:
    """``value`` as a finite float in [low, high] (a bool, NaN, ±inf or a non-number is refused; ``error``: the
    subclass to raise)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise error(f"{option}: {value!r} is not a number; {fix}")
    try:
        as_float = float(value)
    except (OverflowError, ValueError) as exc:  # an integer with hundreds of digits
        raise error(f"{option}: {_short(value)} is out of range ({_bound(low)}–{_bound(high)}); {fix}") from exc
    if not low <= as_float <= high:  # also refuses NaN
        raise error(f"{option}: {_short(value)} is out of range ({_bound(low)}–{_bound(high)}); {fix}")
    return as_float


def whole_number(value: Any, option: str, low: int, high: int, fix: str,
                 error: type[LatticeTalkError] = LatticeTalkError) -> int:
    """``value`` as an int in [low, high]; floats only when whole (1.0 → 1)."""
    as_float = number(value, option, low, high, fix, error)
    if isinstance(value, int) or as_float.is_integer():
        return int(value) if isinstance(value, int) else int(as_float)
    raise error(f"{option}: {value!r} is not a whole number; {fix}")


def input_file(path: str | os.PathLike[str], label: str, fix: str,
               error: type[LatticeTalkError] = LatticeTalkError) -> Path:
    """``path`` as an existing, non-empty regular file. Folders, pipes, devices (``/dev/zero``) and sockets are
    refused by name: reading them blocks or never ends (``error``: the subclass to raise)."""
    path = Path(path)
    if not str(path):
        raise error(f"no {label} file given; {fix}")
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise error(f"{path}: {label} file not found; check the path") from None
    except OSError as exc:  # a path under a file, too long a name, no permission
        raise error(f"{path}: cannot reach the {label} file ({exc.strerror}); check the path") from exc
    if stat.S_ISDIR(mode):
        raise error(f"{path}: is a folder, not an {label} file; {fix}")
    if not stat.S_ISREG(mode):
        kind = ("a pipe (FIFO)" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket")
        raise error(f"{path}: is {kind}, not an {label} file; save the {label} to a file and give that")
    if path.stat().st_size == 0:
        raise error(f"{path}: the {label} file is empty (0 bytes); copy or export it again")
    return path


def output_path(out: str | os.PathLike[str], option: str, suffixes: Iterable[str],
                inputs: Iterable[str | os.PathLike[str] | None] = (), folder_allowed: bool = False) -> Path:
    """``out`` when something can be written there: a file name with one of ``suffixes`` (or, with
    ``folder_allowed``, a folder: an existing one, or a new name without an extension), never one of ``inputs``,
    and not under a regular file. Nothing is created here."""
    suffixes = tuple(suffixes)
    text = os.fspath(out)
    if not text.strip():
        raise LatticeTalkError(f"{option} is empty; give a file name ending in {', '.join(suffixes)}"
                               + (" or a folder" if folder_allowed else ""))
    path = Path(text).expanduser()
    is_folder = path.is_dir() or (folder_allowed and not path.exists() and (not path.suffix or text.endswith(os.sep)))
    if not is_folder and path.suffix.lower() not in suffixes:
        kind = "an existing file" if path.exists() else f"an unknown kind of output ({path.suffix or 'no extension'})"
        raise LatticeTalkError(f"{path}: {option} is {kind}; give a file name ending in {', '.join(suffixes)}"
                               + (" or a folder without an extension" if folder_allowed else ""))
    if not is_folder and path.exists() and not path.is_file():
        raise LatticeTalkError(f"{path}: {option} names a folder or device; give a file name ending in "
                               f"{', '.join(suffixes)}")
    for parent in path.parents:  # the first parent that exists must be a folder
        if parent.exists():
            if not parent.is_dir():
                raise LatticeTalkError(f"{path}: {option} lies under {parent}, which is a file, not a folder; "
                                       "choose another output path")
            break
    resolved = path.resolve()
    for given in inputs:
        if given is None or not str(given):
            continue
        if resolved == Path(given).expanduser().resolve():
            raise LatticeTalkError(f"{path}: {option} is the input {given}; writing there would destroy it — "
                                   "give the output another name")
    return path


def parse_json(text: str | bytes, where: str, fix: str, error: type[LatticeTalkError] = LatticeTalkError) -> Any:
    """JSON text → data, refusing what would crash or mislead later: nesting deeper than ``MAX_JSON_DEPTH``,
    NaN/Infinity, floats that overflow to inf and integers beyond ±2⁵³ (``error``: the subclass to raise)."""

    def refuse_constant(name: str) -> float:
        raise error(f"{where}: holds {name}, not a number; {fix}")

    def finite_float(literal: str) -> float:
        value = float(literal)
        if not math.isfinite(value):
            raise error(f"{where}: the number {_short(literal)} is too large; {fix}")
        return value

    def bounded_int(literal: str) -> int:
        if len(literal.lstrip("-")) > 16 or abs(int(literal)) > MAX_JSON_INTEGER:
            raise error(f"{where}: the number {_short(literal)} is too large; {fix}")
        return int(literal)

    try:
        data = json.loads(text, parse_constant=refuse_constant, parse_float=finite_float, parse_int=bounded_int)
    except RecursionError:
        raise error(f"{where}: nested more than {MAX_JSON_DEPTH} levels deep; {fix}") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise error(f"{where}: not valid JSON ({exc}); {fix}") from exc
    if _depth(data) > MAX_JSON_DEPTH:
        raise error(f"{where}: nested more than {MAX_JSON_DEPTH} levels deep; {fix}")
    return data


def read_json(path: str | os.PathLike[str], what: str, max_bytes: int, fix: str,
              error: type[LatticeTalkError] = LatticeTalkError) -> Any:
    """A JSON file of at most ``max_bytes``, parsed by :func:`parse_json`."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise error(f"{path}: {size / 2**20:.1f} MiB, more than the {max_bytes / 2**20:g} MiB a {what} can be; "
                        f"{fix}")
        text = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: cannot read the {what} ({exc.strerror or exc}); {fix}") from exc
    return parse_json(text, f"{path}", fix, error)


def frame_count(frames: int, where: str, fix: str) -> int:
    """A take's length in frames: at least one, at most what Blender can key."""
    if not 1 <= frames <= MAX_FRAME:
        raise LatticeTalkError(f"{where}: {_short(f'{frames:,}')} frames, more than the {MAX_FRAME:,} Blender can key; "
                               f"{fix}")
    return frames


def sample_rate(rate: int, where: str, error: type[LatticeTalkError] = LatticeTalkError) -> int:
    """An audio file's sample rate, as a microphone records it (a header saying 3 Hz is a damaged file)."""
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise error(f"{where}: sample rate {rate} Hz, outside the {MIN_SAMPLE_RATE:,}–{MAX_SAMPLE_RATE:,} Hz "
                    "of recorded audio; the header is damaged — export the recording again")
    return rate


def _depth(data: Any) -> int:
    """Nesting depth of parsed JSON, without recursion (the parser's own limit is far above ours)."""
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, (list, dict)):
            deepest = max(deepest, level)
            if level > MAX_JSON_DEPTH:
                return level
            stack.extend((child, level + 1) for child in (value.values() if isinstance(value, dict) else value))
    return deepest


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e16 else f"{value:g}"


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 24 else f"{text[:12]}…({len(text)} characters)"
