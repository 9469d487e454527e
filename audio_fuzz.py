"""Audio fuzzing: a fixed family of damaged WAV files through the loader and the speech pipeline
(``python -m lattice_talk bench fuzz``). Every mutant must give a take or one clear error; anything else is a bug.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


FUZZ_SEED = 23  # fixed: a failure found once is found again


def mutated_wav(index: int, seed: int = FUZZ_SEED) -> tuple[bytes, str]:
    """Mutant ``index`` of a fixed family: a valid WAV (one of several encodings of a speech-like buzz) with one
    random damage — flipped bytes, a header field set to an odd or extreme value, a cut, inserted or appended
    garbage, extreme float samples, or clipping. Returns the file's bytes and what was done to it."""
    import io
    import struct

    import soundfile

    rng = np.random.default_rng([seed, index])
    rate, channels, subtype = [(16000, 1, "PCM_16"), (44100, 2, "FLOAT"), (48000, 1, "PCM_24"), (8000, 1, "PCM_U8"),
                               (22050, 2, "PCM_16"), (16000, 1, "DOUBLE")][int(rng.integers(6))]
    seconds = float(rng.uniform(0.3, 2.0))
    t = np.arange(int(seconds * rate)) / rate
    voice = (np.sign(np.sin(2 * np.pi * 140 * t)) * 0.2 * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
             + 0.02 * rng.standard_normal(t.size))
    samples = np.repeat(voice[:, None], channels, 1)
    kind = ["flip bytes", "header field", "truncate", "insert garbage", "append garbage", "extreme samples",
            "clipping", "flip header bytes"][int(rng.integers(8))]
    if kind == "extreme samples" and subtype in ("FLOAT", "DOUBLE"):
        value = rng.choice([1e20, -1e30, 3e38, np.nan, np.inf, 1e-45, 65504.0, 1e6])
        samples[rng.integers(0, samples.shape[0], int(rng.integers(1, 50)))] = value
        kind = f"extreme samples ({value:g})"
    elif kind == "clipping":
        samples = np.clip(samples * float(rng.uniform(2, 50)), -1, 1)
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, subtype=subtype, format="WAV")
    data = bytearray(buffer.getvalue())
    if kind == "flip bytes" or kind == "flip header bytes":
        span = 64 if kind == "flip header bytes" else len(data)
        for at in rng.integers(0, min(span, len(data)), int(rng.integers(1, 40))):
            data[at] = int(rng.integers(256))
    elif kind == "header field":
        offset, fmt = [(4, "<I"), (16, "<I"), (20, "<H"), (22, "<H"), (24, "<I"), (28, "<I"), (32, "<H"), (34, "<H"),
                       (40, "<I")][int(rng.integers(9))]
        limit = 2 ** (8 * struct.calcsize(fmt))
        value = int(rng.choice([0, 1, 2, 3, limit - 1, limit // 2, int(rng.integers(limit))]))
        struct.pack_into(fmt, data, offset, value)
        kind = f"header field at {offset} = {value}"
    elif kind == "truncate":
        data = data[:int(rng.integers(0, len(data)))]
    elif kind == "insert garbage":
        at = int(rng.integers(0, len(data)))
        data[at:at] = rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8).tobytes()
    elif kind == "append garbage":
        data += rng.integers(0, 256, int(rng.integers(1, 65536)), dtype=np.uint8).tobytes()
    return bytes(data), f"{subtype} {rate} Hz ×{channels}, {seconds:.2f} s: {kind}"


def fuzz_audio(count: int, seed: int = FUZZ_SEED, folder: Path | None = None) -> dict:
    """Feed ``count`` mutated WAVs to the audio loader and the shipped speech pipeline. Every mutant must give a
    take or one :class:`LatticeTalkError` naming the file; anything else is a bug, listed with its mutant and the
    failing line."""
    import tempfile
    import traceback

    from .core.errors import LatticeTalkError
    from .core.heads import create
    from .core.jobs import run_sync
    from .core.pipeline import GenerateRequest
    from .core.pipeline_registry import get_pipeline

    pipeline, head = get_pipeline("speech"), create("default")
    outcomes = {"take": 0, "refused": 0, "bug": 0}
    bugs, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(count):
            data, mutation = mutated_wav(index, seed)
            path = Path(folder or scratch) / f"mutant_{index:04d}.wav"
            path.write_bytes(data)
            try:
                run_sync(pipeline, GenerateRequest(audio_path=path, head=head))
                outcomes["take"] += 1
            except LatticeTalkError as exc:
                outcomes["refused"] += 1
                if path.name not in str(exc):  # a refusal that does not say which file leaves a batch user guessing
                    outcomes["bug"] += 1
                    bugs.append({"mutant": index, "mutation": mutation, "error": f"names no file: {exc}", "at": ""})
            except Exception as exc:  # the point of fuzzing: every other exception is a bug to report
                outcomes["bug"] += 1
                where = traceback.extract_tb(exc.__traceback__)[-1]
                bugs.append({"mutant": index, "mutation": mutation, "error": f"{type(exc).__name__}: {exc}",
                             "at": f"{Path(where.filename).name}:{where.lineno} ({where.name})"})
    return {**outcomes, "count": count, "seed": seed, "seconds": time.perf_counter() - started, "bugs": bugs}


def bench_fuzz(count: int = 1000) -> list[dict]:
    """``count`` mutated WAVs (seed FUZZ_SEED) through the loader and the speech pipeline: how many made a take,
    how many were refused with one clear error, and how many raised anything else (bugs; the target is 0)."""
    result = fuzz_audio(count)
    rows = [{"metric": f"mutated WAVs (seed {result['seed']})", "value": result["count"], "unit": "", "target": ""},
            {"metric": "made a take", "value": result["take"], "unit": "", "target": ""},
            {"metric": "refused with one LatticeTalkError", "value": result["refused"], "unit": "", "target": ""},
            {"metric": "other exceptions (bugs)", "value": result["bug"], "unit": "", "target": "0"},
            {"metric": "time per mutant", "value": result["seconds"] / count, "unit": "s", "target": ""}]
    rows += [{"metric": f"bug: mutant {b['mutant']} ({b['mutation']}): {b['error']} at {b['at']}", "value": 1,
              "unit": "", "target": "0"} for b in result["bugs"]]
    return rows
