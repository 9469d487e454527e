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
from .phonetic_encoder import CONFIG_FILE, CONFIG_FORMAT, WEIGHTS_FILE, mel_filters

_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
SUPPORTED_VERSIONS = (5, 6)


def read_ct2(path: str | Path) -> dict[str, np.ndarray]:
    """Every variable of a CTranslate2 model file by name."""
    path = Path(path)
    data = path.read_bytes()
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
    """The first ``layers`` encoder layers as :class:`~.phonetic_encoder.WhisperEncoderLayers` weights, and its sizes."""
    def get(name: str) -> np.ndarray:
        if name not in variables:
            raise LatticeTalkError(f"the model file has no {name}: not a Whisper model")
        return variables[name].astype(np.float16)

    available = sum(name.endswith("/self_attention/linear_0/weight") and name.startswith("encoder/layer_")
                    for name in variables)
    if not 1 <= layers <= available:
        raise LatticeTalkError(f"the model's encoder has {available} layers; keep 1 to {available}")
    state = {f"{conv}.{part}": get(f"encoder/{conv}/{part}") for conv in ("conv1", "conv2") for part in ("weight", "bias")}
    state["positions"] = get("encoder/position_encodings/encodings")
    state["mel_filters"] = mel_filters(state["conv1.weight"].shape[1])  # fp32: small, and the bands' floor is fine
    parts = (("attn_norm", "self_attention/layer_norm"), ("mlp_norm", "ffn/layer_norm"))
    linears = (("qkv", "self_attention/linear_0"), ("out", "self_attention/linear_1"), ("fc1", "ffn/linear_0"),
               ("fc2", "ffn/linear_1"))
    for k in range(layers):
        source = f"encoder/layer_{k}/"
        for mine, theirs in parts:
            state[f"blocks.{k}.{mine}.weight"] = get(source + theirs + "/gamma")
            state[f"blocks.{k}.{mine}.bias"] = get(source + theirs + "/beta")
        for mine, theirs in linears:
            state[f"blocks.{k}.{mine}.weight"] = get(source + theirs + "/weight")
            state[f"blocks.{k}.{mine}.bias"] = get(source + theirs + "/bias")
    d_model = state["conv1.weight"].shape[0]
    heads = int(np.asarray(variables.get("encoder/num_heads", d_model // 64)).reshape(-1)[0])
    sizes = {"n_mels": state["conv1.weight"].shape[1], "d_model": d_model, "heads": heads, "layers": layers,
             "positions": state["positions"].shape[0]}
    return state, sizes


def import_whisper_encoder(model_file: str | Path, out_dir: str | Path, layers: int, source: str = "") -> Path:
    """``out_dir`` ← the first ``layers`` encoder layers of the CTranslate2 Whisper ``model_file``."""
    from safetensors.numpy import save_file

    model_file, out_dir = Path(model_file), Path(out_dir)
    if not model_file.is_file():
        raise LatticeTalkError(f"{model_file}: no such file (a faster-whisper model folder's model.bin)")
    state, sizes = whisper_encoder_state(read_ct2(model_file), layers)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(out_dir / WEIGHTS_FILE))
    (out_dir / CONFIG_FILE).write_text(json.dumps({
        "format": CONFIG_FORMAT, **sizes, "source": source or model_file.name,
        "source_sha256": hashlib.sha256(model_file.read_bytes()).hexdigest(),
        "license": "MIT (OpenAI Whisper weights)"}, indent=2))
    return out_dir
