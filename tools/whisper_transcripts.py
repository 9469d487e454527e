"""Whisper's transcripts of recordings, as the held-out manifest's in-the-wild clips got theirs
(datasets/README.md): Whisper base in CTranslate2's format (faster-whisper's ``model.bin``, ``tokenizer.json``),
English, beam 5, one pass per piece of at most 28 s cut at the quietest 50 ms of its last 8 s.

    python tools/whisper_transcripts.py --model DIR clip.mp4 [clip.wav ...] [--json out.json]

Prints one line per file (name, then the words); ``--json`` also writes {file name: words}. Numbers and words the
aligner's dictionary lacks are then written out by hand in the manifest. Needs ctranslate2, tokenizers and
transformers (for Whisper's log-mel); not shipped with the add-on.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

PIECE_SECONDS = 28.0  # under Whisper's 30 s window
CUT_SEARCH_SECONDS = 8.0  # a piece ends at the quietest moment of its last this many seconds
CUT_STEP_SECONDS = 0.05
PROMPT = ("<|startoftranscript|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>")


def pieces(samples: np.ndarray, rate: int) -> list[np.ndarray]:
    """``samples`` cut into pieces of at most PIECE_SECONDS, each cut where the sound is quietest."""
    out, start, hop = [], 0, int(CUT_STEP_SECONDS * rate)
    while len(samples) - start > PIECE_SECONDS * rate:
        first = start + int((PIECE_SECONDS - CUT_SEARCH_SECONDS) * rate)
        energy = [np.sum(samples[i:i + hop] ** 2) for i in range(first, start + int(PIECE_SECONDS * rate) - hop, hop)]
        cut = first + int(np.argmin(energy)) * hop + hop // 2
        out.append(samples[start:cut])
        start = cut
    return out + [samples[start:]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--model", type=Path, required=True, help="Whisper in CTranslate2's format (a folder)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    import ctranslate2
    import tokenizers
    from transformers import WhisperFeatureExtractor

    from lattice_talk.core.audio import load_audio  # mono at 16 kHz, Whisper's rate

    model = ctranslate2.models.Whisper(str(args.model), compute_type="float32")
    tokenizer = tokenizers.Tokenizer.from_file(str(args.model / "tokenizer.json"))
    prompt = [tokenizer.token_to_id(token) for token in PROMPT]
    mel = WhisperFeatureExtractor(feature_size=80)
    words = {}
    for path in args.files:
        audio = load_audio(path)
        texts = []
        for piece in pieces(audio.samples.astype(np.float32), audio.sample_rate):
            features = mel(piece, sampling_rate=audio.sample_rate, return_tensors="np").input_features
            result = model.generate(ctranslate2.StorageView.from_array(features), [prompt], beam_size=5)
            texts.append(tokenizer.decode(result[0].sequences_ids[0]).strip())
        words[path.name] = " ".join(texts)
        print(f"{path.name}\t{words[path.name]}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(words, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
