"""Whisper's encoder weights out of a CTranslate2 ``model.bin`` (faster-whisper's format), into the phonetic
encoder's folder (:mod:`.phonetic_encoder`): fp16 safetensors of the first N layers and a config.

The file is read as data (numpy views of its arrays; nothing in it is executed). Its layout (CTranslate2
``models/model.cc``, binary version 6): a uint32 version, the spec's name, a uint32 revision, then each variable as
name, rank, dims, dtype, byte count and bytes, then aliases. Strings are a uint16 length (with the final NUL) and the
characters."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np

from ..errors import LatticeTalkError
from .phonetic_encoder import CONFIG_FILE, CONFIG_FORMAT, LIMITS, WEIGHTS_FILE, mel_filters

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
SUPPORTED_VERSIONS = (5, 6)
LICENSE_FILE = "LICENSE"  # Whisper's weights are MIT: their notice travels with every copy of them
WHISPER_LICENSE = """MIT License

Copyright (c) 2022 OpenAI

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
"""


def read_ct2(path: str | Path, data: bytes | None = None) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 model file by name (``data``: the file's bytes, when already read)."""
    path = Path(path)
    data = path.read_bytes() if data is None else data
    offset = 0

    def take(fmt: str) -> tuple:
        nonlocal offset
        values = struct.unpack_from(fmt, data, offset)
        offset += struct.calcsize(fmt)
        return values

    def text() -> str:
        nonlocal offset
        (length,) = take("<H")
        value = data[offset:offset + length - 1].decode()
        offset += length
        return value

    try:
        (version,) = take("<I")
        if version not in SUPPORTED_VERSIONS:
            raise LatticeTalkError(f"{path}: CTranslate2 model version {version}; this reader knows {SUPPORTED_VERSIONS}")
        text(), take("<I")  # the spec's name and revision
        (count,) = take("<I")
        variables = {}
        for _ in range(count):
            name = text()
            (rank,) = take("<B")
            dims = take("<" + "I" * rank) if rank else ()
            (dtype,) = take("<B")
            (size,) = take("<I")
            if dtype not in _DTYPES:
                raise LatticeTalkError(f"{path}: variable {name} has a data type ({dtype}) this reader does not know")
            variables[name] = np.frombuffer(data, _DTYPES[dtype], size // np.dtype(_DTYPES[dtype]).itemsize,
                                            offset).reshape(dims)
            offset += size
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise LatticeTalkError(f"{path}: not a readable CTranslate2 model file ({exc})") from exc
    return variables


def whisper_encoder_state(variables: dict[str, np.ndarray], layers: int) -> tuple[dict[str, np.ndarray], dict]:
    """The first ``layers`` encoder layers as the phonetic encoder's weights (``WhisperEncoderLayers``), and its sizes.
    Every shape is checked against Whisper's layout and LIMITS before anything is built from it (a file is data from
    elsewhere: a crafted one must not make us allocate gigabytes or fail on an index)."""
    def get(name: str, shape: tuple[int, ...]) -> np.ndarray:
        value = variables.get(name)
        if value is None:
            raise LatticeTalkError(f"the model file has no {name}: not a Whisper model")
        if value.dtype not in (np.float16, np.float32):
            raise LatticeTalkError(f"{name} is {value.dtype} (a quantized conversion): convert the model with "
                                   "--quantization float16")
        if value.shape != shape:
            raise LatticeTalkError(f"{name} has shape {value.shape}, not {shape}: not a Whisper encoder")
        return value.astype(np.float16)

    conv1 = variables.get("encoder/conv1/weight")
    if conv1 is None or conv1.ndim != 3:
        raise LatticeTalkError("the model file has no 3-D encoder/conv1/weight: not a Whisper model")
    heads = np.asarray(variables.get("encoder/num_heads", conv1.shape[0] // 64)).reshape(-1)
    positions = variables.get("encoder/position_encodings/encodings")
    sizes = {"n_mels": conv1.shape[1], "d_model": conv1.shape[0], "heads": int(heads[0]) if heads.size else 0,
             "layers": layers, "positions": positions.shape[0] if positions is not None and positions.ndim == 2 else 0}
    for key, (low, high) in LIMITS.items():
        if not low <= sizes[key] <= high:
            raise LatticeTalkError(f"{key} {sizes[key]} is outside {low}–{high}: not a Whisper encoder this reads")
    d, ffn = sizes["d_model"], 4 * sizes["d_model"]
    if d % sizes["heads"]:
        raise LatticeTalkError(f"d_model {d} is not a multiple of num_heads {sizes['heads']}: not a Whisper encoder")
    available = sum(name.endswith("/self_attention/linear_0/weight") and name.startswith("encoder/layer_")
                    for name in variables)
    if layers > available:
        raise LatticeTalkError(f"the model's encoder has {available} layers; keep 1 to {available}")
    state = {"conv1.weight": get("encoder/conv1/weight", (d, sizes["n_mels"], 3)), "conv1.bias": get("encoder/conv1/bias", (d,)),
             "conv2.weight": get("encoder/conv2/weight", (d, d, 3)), "conv2.bias": get("encoder/conv2/bias", (d,)),
             "positions": get("encoder/position_encodings/encodings", (sizes["positions"], d)),
             "mel_filters": mel_filters(sizes["n_mels"])}  # fp32: small, and the bands' floor is fine
    norms = (("attn_norm", "self_attention/layer_norm"), ("mlp_norm", "ffn/layer_norm"))
    linears = (("qkv", "self_attention/linear_0", 3 * d, d), ("out", "self_attention/linear_1", d, d),
               ("fc1", "ffn/linear_0", ffn, d), ("fc2", "ffn/linear_1", d, ffn))
    for k in range(layers):
        source = f"encoder/layer_{k}/"
        for mine, theirs in norms:
            state[f"blocks.{k}.{mine}.weight"] = get(source + theirs + "/gamma", (d,))
            state[f"blocks.{k}.{mine}.bias"] = get(source + theirs + "/beta", (d,))
        for mine, theirs, rows, columns in linears:
            state[f"blocks.{k}.{mine}.weight"] = get(source + theirs + "/weight", (rows, columns))
            state[f"blocks.{k}.{mine}.bias"] = get(source + theirs + "/bias", (rows,))
    return state, sizes


def import_whisper_encoder(model_file: str | Path, out_dir: str | Path, layers: int, source: str = "") -> Path:
    """``out_dir`` ← the first ``layers`` encoder layers of the CTranslate2 Whisper ``model_file``."""
    from safetensors.numpy import save_file

    model_file, out_dir = Path(model_file), Path(out_dir)
    if not model_file.is_file():
        raise LatticeTalkError(f"{model_file}: no such file (a faster-whisper model folder's model.bin)")
    data = model_file.read_bytes()
    try:
        state, sizes = whisper_encoder_state(read_ct2(model_file, data), layers)
    except LatticeTalkError as exc:
        message = str(exc)
        raise (exc if message.startswith(str(model_file)) else LatticeTalkError(f"{model_file}: {message}")) from None
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(out_dir / WEIGHTS_FILE))
    (out_dir / LICENSE_FILE).write_text(WHISPER_LICENSE)
    (out_dir / CONFIG_FILE).write_text(json.dumps({
        "format": CONFIG_FORMAT, **sizes, "source": source or model_file.name,
        "source_sha256": hashlib.sha256(data).hexdigest(),
        "license": "MIT (OpenAI Whisper weights)"}, indent=2))
    return out_dir
