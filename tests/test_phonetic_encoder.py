"""The phonetic encoder (core.speech.phonetic_encoder, core.speech.ct2_whisper): Whisper's first encoder layers,
imported from a CTranslate2 model file, computing what transformers' Whisper computes.

Real inputs the tests make: a tiny random-init Whisper from transformers, written as a CTranslate2 model file the
way faster-whisper's converter lays it out (its binary format, version 6), and generated audio."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from lattice_talk.core.errors import LatticeTalkError

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

D_MODEL, HEADS, LAYERS = 32, 4, 2


def _string(text: str) -> bytes:
    data = text.encode() + b"\0"
    return struct.pack("<H", len(data)) + data


def write_ct2(path: Path, variables: dict[str, np.ndarray]) -> None:
    """A CTranslate2 model file (binary version 6) holding ``variables``."""
    codes = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.int32): 3,
             np.dtype(np.float16): 4}
    out = [struct.pack("<I", 6), _string("WhisperSpec"), struct.pack("<I", 3), struct.pack("<I", len(variables))]
    for name, value in variables.items():
        value = np.ascontiguousarray(value)
        out += [_string(name), struct.pack("<B", value.ndim), struct.pack("<" + "I" * value.ndim, *value.shape),
                struct.pack("<B", codes[value.dtype]), struct.pack("<I", value.nbytes), value.tobytes()]
    out.append(struct.pack("<I", 0))
    path.write_bytes(b"".join(out))


def ct2_variables(encoder) -> dict[str, np.ndarray]:
    """transformers' WhisperEncoder weights under CTranslate2's names (its Whisper converter: q, k, v fused, k
    without a bias)."""
    w = {k: v.detach().numpy().astype(np.float16) for k, v in encoder.state_dict().items()}
    out = {"encoder/conv1/weight": w["conv1.weight"], "encoder/conv1/bias": w["conv1.bias"],
           "encoder/conv2/weight": w["conv2.weight"], "encoder/conv2/bias": w["conv2.bias"],
           "encoder/position_encodings/encodings": w["embed_positions.weight"],
           "encoder/num_heads": np.array(HEADS, np.int16),
           "encoder/layer_norm/gamma": w["layer_norm.weight"], "encoder/layer_norm/beta": w["layer_norm.bias"]}
    for k in range(LAYERS):
        hf, ct = f"layers.{k}.", f"encoder/layer_{k}/"
        out[ct + "self_attention/linear_0/weight"] = np.concatenate(
            [w[hf + f"self_attn.{p}_proj.weight"] for p in "qkv"])
        out[ct + "self_attention/linear_0/bias"] = np.concatenate(
            [w[hf + "self_attn.q_proj.bias"], np.zeros(D_MODEL, np.float16), w[hf + "self_attn.v_proj.bias"]])
        for mine, theirs in (("self_attention/linear_1", "self_attn.out_proj"), ("ffn/linear_0", "fc1"),
                             ("ffn/linear_1", "fc2")):
            out[ct + mine + "/weight"], out[ct + mine + "/bias"] = w[hf + theirs + ".weight"], w[hf + theirs + ".bias"]
        for mine, theirs in (("self_attention/layer_norm", "self_attn_layer_norm"), ("ffn/layer_norm", "final_layer_norm")):
            out[ct + mine + "/gamma"], out[ct + mine + "/beta"] = w[hf + theirs + ".weight"], w[hf + theirs + ".bias"]
    return out


def tiny_whisper(path: Path):
    """transformers' tiny random WhisperEncoder (weights a fp16 file holds exactly, so the two sides differ only by
    arithmetic), written to ``path`` as a CTranslate2 file; → the encoder."""
    from transformers import WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    torch.manual_seed(0)
    config = WhisperConfig(d_model=D_MODEL, encoder_layers=LAYERS, encoder_attention_heads=HEADS,
                           encoder_ffn_dim=4 * D_MODEL, num_mel_bins=80, max_source_positions=1500)
    encoder = WhisperEncoder(config).eval()
    with torch.no_grad():
        for p in encoder.parameters():
            p.copy_(p.half().float())
    write_ct2(path, ct2_variables(encoder))
    return encoder


@pytest.fixture(scope="module")
def whisper(tmp_path_factory):
    """(transformers' tiny random WhisperEncoder, its CTranslate2 file)."""
    path = tmp_path_factory.mktemp("ct2") / "model.bin"
    return tiny_whisper(path), path


def _speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    voiced = np.sin(2 * np.pi * 140 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.05 * rng.normal(size=len(t))
    return (0.3 * voiced).astype(np.float32)


def test_log_mel_is_whispers(whisper):
    from transformers import WhisperFeatureExtractor

    from lattice_talk.core.speech.phonetic_encoder import log_mel, mel_filters

    samples = _speech_like(2.0)
    reference = WhisperFeatureExtractor(feature_size=80)(samples, sampling_rate=16000, return_tensors="np")
    ours = log_mel(samples, torch.from_numpy(mel_filters())).numpy()
    assert ours.shape == (80, 200)
    # the last frame differs: Whisper's window there reads the zeros it pads the audio to 30 s with, ours the
    # audio's own end (STFT reflection)
    assert np.abs(ours[:, :-1] - reference["input_features"][0][:, :199]).max() < 1e-3


def test_imported_layers_compute_what_transformers_whisper_computes(whisper, tmp_path):
    from lattice_talk.cli import main
    from lattice_talk.core.speech.phonetic_encoder import load_encoder, log_mel

    hf, path = whisper
    assert main(["speech", "import-whisper", "--ct2", str(path), "--layers", "1", "--out", str(tmp_path / "enc")]) == 0
    ours = load_encoder(tmp_path / "enc")
    assert "Copyright (c) 2022 OpenAI" in (tmp_path / "enc" / "LICENSE").read_text()  # MIT: the notice travels along
    mel = torch.nn.functional.pad(log_mel(_speech_like(30.0), ours.mel_filters), (0, 1))[:, :3000][None]  # 30 s
    with torch.no_grad():
        expected = hf(mel, output_hidden_states=True).hidden_states[1]  # the first layer's output (the second's input)
        got = ours(mel)
    assert got.shape == expected.shape == (1, 1500, D_MODEL)
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-3)


def test_features_are_on_the_decoders_50_hz_grid_and_long_audio_is_encoded_in_pieces(whisper, tmp_path):
    from lattice_talk.core.speech.ct2_whisper import import_whisper_encoder
    from lattice_talk.core.speech.log_mel import n_feature_frames
    from lattice_talk.core.speech.cpu_int8 import int8_linears
    from lattice_talk.core.speech.phonetic_encoder import (PIECE_CONTEXT_SECONDS, PIECE_SECONDS, load_encoder, log_mel,
                                                           phonetic_features)

    features = phonetic_features(import_whisper_encoder(whisper[1], tmp_path / "enc", layers=1))
    for seconds in (0.005, 1.0, 3.37, 31.0):
        samples = _speech_like(seconds)
        out = features(samples)
        assert out.shape == (n_feature_frames(len(samples)), D_MODEL) and np.isfinite(out).all()
    long = _speech_like(3 * PIECE_SECONDS)
    first = int(PIECE_SECONDS * 50)  # the first piece's frames see the context after it and no further (attention
    # over the whole 24 s would change them)
    cut = features(long[:int((PIECE_SECONDS + PIECE_CONTEXT_SECONDS) * 16000)])
    assert np.abs(features(long)[:first] - cut[:first]).max() < 2e-3  # (int8 activations scale per call)
    encoder = int8_linears(load_encoder(tmp_path / "enc"))
    with torch.no_grad():  # the encoder over all of it at once: its first frames hear the rest
        one_piece = encoder(log_mel(long, encoder.mel_filters)[None])[0].numpy()
    assert np.abs(one_piece[:first] - cut[:first]).max() > 5e-3


def test_the_cpu_encoder_runs_int8_linear_layers_close_to_fp32(whisper, tmp_path):
    """int8 Linear layers on the CPU (~3× faster for them): the states stay close to fp32's."""
    from lattice_talk.core.speech.ct2_whisper import import_whisper_encoder
    from lattice_talk.core.speech.cpu_int8 import int8_linears
    from lattice_talk.core.speech.phonetic_encoder import load_encoder, log_mel

    fp32 = load_encoder(import_whisper_encoder(whisper[1], tmp_path / "enc", layers=LAYERS))
    int8 = int8_linears(fp32)
    assert not any(type(m) is torch.nn.Linear for m in int8.modules())  # every Linear replaced
    assert sum(type(m) is torch.nn.Linear for m in fp32.modules()) == 4 * LAYERS  # the original kept as it was
    assert int8_linears(fp32, "cuda") is fp32  # a GPU runs fp32 (decided from the device name: no GPU needed)
    mel = log_mel(_speech_like(4.0), fp32.mel_filters)[None]
    with torch.no_grad():
        a, b = fp32(mel)[0], int8(mel)[0]
    cosine = torch.nn.functional.cosine_similarity(a, b, dim=-1)
    assert cosine.min() > 0.98 and not torch.equal(a, b)


def test_a_wrong_file_or_layer_count_is_one_clear_error(whisper, tmp_path):
    from lattice_talk.core.speech.ct2_whisper import import_whisper_encoder
    from lattice_talk.core.speech.phonetic_encoder import load_encoder

    with pytest.raises(LatticeTalkError, match=f"encoder has {LAYERS} layers"):
        import_whisper_encoder(whisper[1], tmp_path / "a", layers=LAYERS + 1)
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"\x06\0\0\0garbage")
    with pytest.raises(LatticeTalkError, match="model.bin: not a readable CTranslate2 model file"):
        import_whisper_encoder(bad, tmp_path / "b", layers=1)
    variables = ct2_variables(whisper[0])
    for name, value in (("encoder/conv1/weight", np.zeros(4, np.float16)),  # crafted: wrong rank
                        ("encoder/conv2/weight", np.zeros((D_MODEL, D_MODEL, 5), np.float16)),  # wrong shape
                        ("encoder/layer_0/ffn/linear_0/weight", np.zeros((4 * D_MODEL, D_MODEL), np.int8))):  # quantized
        write_ct2(bad, {**variables, name: value})
        with pytest.raises(LatticeTalkError, match=r"model\.bin: .*(conv1|shape|quantized)"):
            import_whisper_encoder(bad, tmp_path / "b", layers=1)
    folder = import_whisper_encoder(whisper[1], tmp_path / "c", layers=1)
    (folder / "model.safetensors").write_bytes(b"not weights")
    with pytest.raises(LatticeTalkError, match=r"model\.safetensors: the weights are damaged"):
        load_encoder(folder)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()  # nothing half-written


def test_encoding_audio_does_not_import_transformers(whisper, tmp_path):
    """transformers takes ~2.5 s to import: a fresh `generate` must not pay it (the mel bank is in the weights)."""
    import subprocess
    import sys

    from lattice_talk.core.speech.ct2_whisper import import_whisper_encoder

    folder = import_whisper_encoder(whisper[1], tmp_path / "enc", layers=1)
    code = ("import sys, numpy as np; from lattice_talk.core.speech.phonetic_encoder import phonetic_features; "
            f"print(phonetic_features({str(folder)!r})(np.zeros(16000, np.float32)).shape, 'transformers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["(50,", f"{D_MODEL})", "False"]
