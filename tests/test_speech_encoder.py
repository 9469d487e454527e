"""Speech encoders: tiny random wav2vec2 / HuBERT / WavLM checkpoints made here, offline loading, chunking, frame
alignment, and the self-supervised pretraining loop (checkpoint, resume, determinism). Nothing is downloaded."""

from __future__ import annotations

import json
import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from lattice_talk.cli import main  # noqa: E402
from lattice_talk.core.errors import LatticeTalkError  # noqa: E402
from lattice_talk.core.speech import encoder as encoder_module  # noqa: E402
from lattice_talk.core.speech import frames_at, load_encoder, n_video_frames  # noqa: E402
from lattice_talk.core.speech import pretrain as pretrain_module  # noqa: E402
from lattice_talk.core.speech.pretrain import pretrain, small_config  # noqa: E402

SR = 16000
# A small conv stack with the standard total stride (5 · 8 · 8 = 320 samples → 50 Hz), a 325-sample receptive field
# and an 8-frame positional convolution: far shorter than half the default 1 s chunk overlap.
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
            conv_dim=(16, 16, 16), conv_kernel=(10, 8, 8), conv_stride=(5, 8, 8),
            num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=2)
KINDS = {"wav2vec2": ("Wav2Vec2Config", "Wav2Vec2Model"), "hubert": ("HubertConfig", "HubertModel"),
         "wavlm": ("WavLMConfig", "WavLMModel")}


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise through a moving formant-ish filter with syllable-rate loudness: not silence, not white."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    voiced = np.sin(2 * np.pi * (120 + 20 * np.sin(2 * np.pi * 0.5 * t)) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    return (0.2 * voiced + 0.02 * rng.standard_normal(n)).astype(np.float32)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """One tiny random checkpoint folder per supported model type, written with save_pretrained."""
    root = tmp_path_factory.mktemp("encoders")
    out = {}
    for kind, (config_name, model_name) in KINDS.items():
        torch.manual_seed(0)
        config = getattr(transformers, config_name)(**TINY)
        getattr(transformers, model_name)(config).save_pretrained(root / kind)
        out[kind] = root / kind
    return out


@pytest.fixture()
def no_network(monkeypatch):
    """Any attempt to open a connection fails the test (and is recorded, in case the error gets swallowed)."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    yield attempts
    assert not attempts, f"network access attempted: {attempts}"


# ------------------------------------------------------------------------------------------------ loading, encoding


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_tiny_checkpoint_loads_and_encodes_at_50_hz(checkpoints, kind, no_network):
    encoder = load_encoder(checkpoints[kind], layer="weighted")
    assert encoder.model_type == kind and type(encoder.model).__name__ == KINDS[kind][1]
    assert encoder.fps == 50.0 and encoder.hop == 320 and encoder.n_hidden_states == 3
    assert not encoder.normalize  # no preprocessor_config.json and feat_extract_norm "group" → raw samples
    x = speech_like(3.0)
    features = encoder.encode(x)
    assert features.shape == (encoder.n_features(len(x)), 32) and 148 <= features.shape[0] <= 150
    assert torch.isfinite(features).all()
    # One chunk: exactly the model's own hidden states, for every choice of layer.
    with torch.no_grad():
        states = encoder.model(torch.from_numpy(x)[None], output_hidden_states=True).hidden_states
    for layer, expected in ((0, states[0]), (1, states[1]), (-1, states[-1]), ("last", states[-1])):
        got = load_encoder(checkpoints[kind], layer=layer).encode(x)
        torch.testing.assert_close(got, expected[0], rtol=1e-5, atol=1e-5)
    weights = torch.softmax(torch.zeros(3), 0)
    torch.testing.assert_close(features, sum(w * s[0] for w, s in zip(weights, states)), rtol=1e-5, atol=1e-5)
    assert encoder.hidden_states(x).shape == (3, features.shape[0], 32)


def test_weighted_layer_mixing_is_differentiable(checkpoints):
    encoder = load_encoder(checkpoints["wavlm"], layer="weighted")
    params = list(encoder.parameters())
    assert len(params) == 1 and params[0].shape == (3,) and params[0].requires_grad
    features = encoder.encode(speech_like(2.0))
    assert features.requires_grad
    (features * torch.linspace(-1, 1, features.shape[1])).sum().backward()
    grad = encoder.layer_weights.logits.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in encoder.model.parameters())  # the encoder stays frozen
    # The module is importable by name (for the decoder) and trains like any other.
    from lattice_talk.core.speech.encoder import LayerWeights

    assert isinstance(encoder.layer_weights, LayerWeights)
    optimizer = torch.optim.SGD(encoder.parameters(), lr=1.0)
    before = encoder.layer_weights.weights().detach().clone()
    optimizer.step()
    assert not torch.allclose(before, encoder.layer_weights.weights().detach())
    # Fixed layers have nothing to train.
    assert list(load_encoder(checkpoints["wavlm"], layer=1).parameters()) == []


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_chunked_encoding_matches_where_the_receptive_field_is_short(checkpoints, kind, monkeypatch, tmp_path):
    """45 s in 20 s chunks with 1 s overlap. With layer-normed conv layers (feat_extract_norm "layer": large models,
    WavLM, our small encoder) the conv + positional-conv output (hidden state 0, receptive field ~0.3 s here) is
    identical to one pass. Base models' group norm normalises each conv channel over the whole input, so there the
    chunk's statistics replace the utterance's and hidden state 0 differs too (asserted only similar). Transformer
    layers attend over the whole chunk, so deep features differ near and away from seams (not asserted equal), but
    every frame is there and no forward pass sees more than one chunk."""
    x = speech_like(45.0, seed=1)
    local_folder = tmp_path / "layer_norm"
    config_name, model_name = KINDS[kind]
    torch.manual_seed(0)
    getattr(transformers, model_name)(getattr(transformers, config_name)(**TINY, feat_extract_norm="layer")).save_pretrained(local_folder)
    for folder, exact in ((local_folder, True), (checkpoints[kind], False)):
        local = load_encoder(folder, layer=0)
        whole = local.encode(x, chunk_seconds=100.0)
        chunked = local.encode(x)  # defaults: 20 s chunks, 1 s overlap
        assert chunked.shape == whole.shape == (local.n_features(len(x)), 32)
        if exact:
            torch.testing.assert_close(chunked, whole, rtol=1e-4, atol=1e-4)
        else:
            assert torch.nn.functional.cosine_similarity(chunked, whole, dim=1).mean() > 0.8

    deep = load_encoder(checkpoints[kind], layer="last")
    seen = []
    forward = deep.model.forward

    def spy(input_values, *args, **kwargs):
        seen.append(input_values.shape[-1])
        return forward(input_values, *args, **kwargs)

    monkeypatch.setattr(deep.model, "forward", spy)
    chunked_last = deep.encode(x)
    assert chunked_last.shape == whole.shape and torch.isfinite(chunked_last).all()
    assert seen == [20 * SR, 20 * SR, 45 * SR - 38 * SR]  # three windows, none longer than 20 s
    monkeypatch.undo()
    whole_last = deep.encode(x, chunk_seconds=100.0)
    # Same frames, close but not identical: the seams change what attention sees.
    cosine = torch.nn.functional.cosine_similarity(chunked_last, whole_last, dim=1)
    assert cosine.mean() > 0.8


def test_frames_at_maps_50_hz_to_video_frames():
    for seconds, fps in ((3.0, 30.0), (10.0, 30.0), (2.5, 25.0), (1.01, 24.0), (4.0, 60.0)):
        n_samples = round(seconds * SR)
        n = n_video_frames(n_samples, fps)
        assert n == max(1, int(np.ceil(n_samples / SR * fps)))  # the corpus articulation's frame count
        features = torch.randn(int(seconds * 50) - 1, 8)
        out = frames_at(features, n, fps)
        assert out.shape == (n, 8)
    assert n_video_frames(48000, 30.0) == 90
    # A ramp lands exactly where the times say: frame j at j/30 s ↔ feature index j·50/30.
    ramp = torch.arange(149, dtype=torch.float64)[:, None].repeat(1, 2)
    out = frames_at(ramp, 90, 30.0)
    np.testing.assert_allclose(out[:, 0].numpy(), np.minimum(np.arange(90) * 50 / 30, 148), atol=1e-9)
    # An offset shifts the sampling; times outside the features clamp to the edge frames.
    shifted = frames_at(ramp, 90, 30.0, feature_offset=0.0125)
    np.testing.assert_allclose(shifted[:, 0].numpy(), np.clip((np.arange(90) / 30 - 0.0125) * 50, 0, 148), atol=1e-9)
    # numpy in → numpy out; gradients flow through the torch path.
    assert isinstance(frames_at(np.ones((5, 3), np.float32), 7, 30.0), np.ndarray)
    leaf = torch.randn(10, 4, requires_grad=True)
    frames_at(leaf, 6, 30.0).sum().backward()
    assert leaf.grad is not None
    with pytest.raises(ValueError):
        frames_at(ramp, 0, 30.0)


def test_encoder_method_frames_at_uses_its_rate(checkpoints):
    encoder = load_encoder(checkpoints["wav2vec2"], layer="last")
    x = speech_like(3.0)
    aligned = encoder.frames_at(encoder.encode(x), n_video_frames(len(x), 30.0), 30.0)
    assert aligned.shape == (90, 32)
    assert encoder.feature_offset == pytest.approx(325 / 2 / SR)


def test_layer_choice_and_input_are_checked(checkpoints):
    with pytest.raises(LatticeTalkError, match="out of range"):
        load_encoder(checkpoints["hubert"], layer=3)
    with pytest.raises(LatticeTalkError, match="integer, 'last' or 'weighted'"):
        load_encoder(checkpoints["hubert"], layer="middle")
    encoder = load_encoder(checkpoints["hubert"], layer=-1)
    assert encoder.layer == 2
    with pytest.raises(LatticeTalkError, match="shorter than"):
        encoder.encode(np.zeros(100, np.float32))
    with pytest.raises(LatticeTalkError, match="mono"):
        encoder.encode(np.zeros((2, 16000), np.float32))
    with pytest.raises(LatticeTalkError, match="NaN"):
        encoder.encode(np.full(16000, np.nan, np.float32))


def test_normalisation_follows_the_feature_extractor(checkpoints, tmp_path):
    import shutil

    folder = tmp_path / "normalised"
    shutil.copytree(checkpoints["wav2vec2"], folder)
    (folder / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True, "sampling_rate": 16000}))
    encoder = load_encoder(folder, layer=0)
    assert encoder.normalize
    x = speech_like(2.0)
    # Normalised input does not care about the level; the raw-input model does.
    torch.testing.assert_close(encoder.encode(x), encoder.encode(3.0 * x), rtol=1e-4, atol=1e-4)
    # "layer"-norm models (wav2vec2-large-lv60, WavLM, HuBERT-large) without a preprocessor file expect normalised input.
    layer_norm = tmp_path / "layer_norm"
    transformers.WavLMModel(transformers.WavLMConfig(**TINY, feat_extract_norm="layer")).save_pretrained(layer_norm)
    assert load_encoder(layer_norm).normalize
    (folder / "preprocessor_config.json").write_text(json.dumps({"do_normalize": True, "sampling_rate": 8000}))
    with pytest.raises(LatticeTalkError, match="8000 Hz"):
        load_encoder(folder)


# ------------------------------------------------------------------------------------------------ refusals


def test_missing_hub_id_offline_says_what_to_download(no_network):
    before = os.environ.get("HF_HUB_OFFLINE")
    with pytest.raises(LatticeTalkError) as info:
        load_encoder("lattice-talk-tests/no-such-encoder")
    message = str(info.value)
    assert "lattice-talk-tests/no-such-encoder is not in the local cache and downloads are off" in message
    assert "hf download lattice-talk-tests/no-such-encoder --local-dir" in message
    assert "point `speech train --encoder`" in message
    assert os.environ.get("HF_HUB_OFFLINE") == before  # restored after the load


def test_missing_or_wrong_paths_are_clear(tmp_path, no_network):
    with pytest.raises(LatticeTalkError, match="folder not found"):
        load_encoder(tmp_path / "nowhere")
    with pytest.raises(LatticeTalkError, match="folder not found"):
        load_encoder("./relative/nowhere")
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(LatticeTalkError, match="is a file"):
        load_encoder(tmp_path / "file.bin")
    with pytest.raises(LatticeTalkError, match="no config.json"):
        load_encoder(tmp_path)


def test_unsupported_model_type_is_refused(tmp_path, no_network):
    bert = tmp_path / "bert"
    transformers.BertModel(transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                   intermediate_size=64, vocab_size=100)).save_pretrained(bert)
    with pytest.raises(LatticeTalkError, match=r"model_type 'bert' is not a supported speech encoder.*hubert, wav2vec2, wavlm"):
        load_encoder(bert)
    custom = tmp_path / "custom"
    custom.mkdir()
    (custom / "config.json").write_text(json.dumps({"model_type": "my_speech", "auto_map": {"AutoModel": "x.Model"}}))
    with pytest.raises(LatticeTalkError, match="never runs a checkpoint's own code"):
        load_encoder(custom)


def test_pickle_only_checkpoint_is_refused(checkpoints, tmp_path):
    folder = tmp_path / "pickled"
    folder.mkdir()
    (folder / "config.json").write_text((checkpoints["hubert"] / "config.json").read_text())
    (folder / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(LatticeTalkError, match="pickle"):
        load_encoder(folder)


def test_remote_code_is_never_trusted():
    for module in (encoder_module, pretrain_module):
        source = Path(module.__file__).read_text()
        assert not re.search(r"trust_remote_code\s*=", source), module.__name__
    assert "use_safetensors=True" in Path(encoder_module.__file__).read_text()


def test_import_is_cheap():
    import subprocess
    import sys

    code = ("import sys, lattice_talk.core.speech.encoder, lattice_talk.core.speech.pretrain; "
            "print('torch' in sys.modules, 'transformers' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "False"]


# ------------------------------------------------------------------------------------------------ pretraining


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    from lattice_talk.core.data.corpus import synth_corpus

    root = tmp_path_factory.mktemp("corpus")
    try:
        synth_corpus(root, hours=0.003)
    except LatticeTalkError as exc:  # no espeak-ng / festival / flite on this machine
        pytest.skip(str(exc))
    return root


def tiny_pretrain_config():
    return small_config(hidden_size=64, num_layers=2, num_heads=2, conv_dim=(16, 32, 32, 64, 64),
                        codevectors_per_group=16, proj_codevector_dim=32, num_negatives=10, mask_time_length=5)


def test_small_config_is_light_and_50_hz():
    config = small_config()
    assert math.prod(config.conv_stride) == 320 and config.hidden_size == 256 and config.num_hidden_layers == 3
    assert config.num_codevectors_per_group == 64 and config.num_codevector_groups == 2 and config.proj_codevector_dim == 128
    model = transformers.Wav2Vec2Model(config)
    assert sum(p.numel() for p in model.parameters()) < 4_000_000


def test_pretrain_checkpoints_loads_and_resumes_exactly(tiny_corpus, tmp_path, no_network):
    kwargs = dict(batch_seconds=2.0, crop_seconds=1.0, seed=3, config=tiny_pretrain_config(), save_every=2)
    out = tmp_path / "ssl"
    seen = []
    first = pretrain(tiny_corpus, out, steps=5, until=3, progress=lambda step, steps, entry: seen.append(step), **kwargs)
    assert [e["step"] for e in first] == [1, 2, 3] and seen == [1, 2, 3]
    assert all(math.isfinite(e["loss"]) and e["perplexity"] > 0 for e in first)
    assert first[0]["temperature"] == pytest.approx(2.0) and first[1]["lr"] > first[2]["lr"]  # annealing, decay
    for name in ("config.json", "model.safetensors", "preprocessor_config.json", "optimizer.pt", "trainer_state.json"):
        assert (out / name).is_file(), name
    assert not (out / ".checkpoint-tmp").exists()
    state = json.loads((out / "trainer_state.json").read_text())
    assert state["step"] == 3 and len(state["history"]) == 3
    torch.load(out / "optimizer.pt", weights_only=True)  # loadable without unpickling code

    encoder = load_encoder(out, layer="weighted")
    assert encoder.model_type == "wav2vec2" and encoder.normalize and encoder.n_hidden_states == 3
    assert encoder.encode(speech_like(1.0)).shape == (encoder.n_features(SR), 64)

    resumed = pretrain(tiny_corpus, out, steps=5, **kwargs)
    assert [e["step"] for e in resumed] == [1, 2, 3, 4, 5]
    assert resumed[:3] == first  # the history prefix is the first run's, untouched
    assert json.loads((out / "trainer_state.json").read_text())["step"] == 5

    straight = pretrain(tiny_corpus, tmp_path / "straight", steps=5, **kwargs)
    assert [e["loss"] for e in straight] == [e["loss"] for e in resumed]  # deterministic; resume changes nothing

    with pytest.raises(LatticeTalkError, match="different settings"):
        pretrain(tiny_corpus, out, steps=6, **{**kwargs, "seed": 4})
    again = pretrain(tiny_corpus, out, steps=5, **kwargs)  # already done: nothing more to train
    assert again == resumed


def test_pretrain_command(tiny_corpus, tmp_path, capsys):
    out = tmp_path / "cli_ssl"
    code = main(["speech", "pretrain", "--corpus", str(tiny_corpus), "--out", str(out), "--steps", "2",
                 "--batch-seconds", "2", "--crop-seconds", "1", "--quiet"])
    assert code == 0
    assert "step 2/2" in capsys.readouterr().out
    assert json.loads((out / "trainer_state.json").read_text())["step"] == 2
    assert main(["speech", "pretrain", "--corpus", str(tmp_path / "none"), "--out", str(out), "--steps", "2"]) == 2



def test_log_mel_front_end_pretrains_saves_and_reloads(tiny_corpus, tmp_path, no_network):
    from safetensors import safe_open

    from lattice_talk.core.speech.log_mel import log_mel
    from lattice_talk.core.errors import LatticeTalkError
    from lattice_talk.core.speech.frontend import FRONT_END_KEY, LOG_MEL, install

    config = small_config(hidden_size=64, num_layers=2, num_heads=2, codevectors_per_group=16, proj_codevector_dim=32,
                          num_negatives=10, mask_time_length=5, front_end="log_mel")
    assert getattr(config, FRONT_END_KEY) == LOG_MEL and config.conv_stride == (320,) and config.conv_kernel == (400,)
    out = tmp_path / "ssl_log_mel"
    kwargs = dict(batch_seconds=2.0, crop_seconds=1.0, seed=5, config=config, save_every=2)
    first = pretrain(tiny_corpus, out, steps=3, until=2, **kwargs)
    assert len(first) == 2 and all(math.isfinite(e["loss"]) for e in first)
    with safe_open(str(out / "model.safetensors"), "pt") as weights:
        assert not [k for k in weights.keys() if "feature_extractor" in k]  # the filterbank is fixed, not saved
    resumed = pretrain(tiny_corpus, out, steps=3, **kwargs)
    assert resumed[:2] == first and len(resumed) == 3

    from lattice_talk.core.data.corpus import Corpus

    encoder = load_encoder(out, layer=0, plain_torch=False)  # the transformers model with the front end installed
    audio = next(iter(Corpus(tiny_corpus).utterances("train"))).audio.astype(np.float32)  # synthesised speech
    features = encoder.model.feature_extractor(torch.from_numpy(audio)[None])[0].T.numpy()
    assert features.shape == (encoder.n_features(len(audio)), 80)
    reference = log_mel(audio)[1:len(features) + 1]  # ours start at sample 0, log_mel's frames are centred
    assert np.corrcoef(features.ravel(), reference.ravel())[0, 1] > 0.8  # half a frame apart: not identical
    assert encoder.encode(audio).shape == (encoder.n_features(len(audio)), 64)
    with pytest.raises(ValueError, match="front_end"):
        small_config(front_end="mfcc")

    # Loudness reaches the transformer: the same sentence at full and at a tenth of the level, one after the
    # other, projects to frames that differ by one constant vector (the level) — a per-frame LayerNorm would
    # rescale every frame its own way.
    loud_then_quiet = np.concatenate([audio, audio / 10]).astype(np.float32)
    with torch.no_grad():
        bands = encoder.model.feature_extractor(torch.from_numpy(loud_then_quiet)[None]).transpose(1, 2)
        projected = encoder.model.feature_projection(bands)[0][0].numpy()
    half = len(projected) // 2
    level = projected[5:half - 5] - projected[half + 5:2 * half - 5]
    consistency = np.linalg.norm(level.mean(0)) / np.linalg.norm(level, axis=1).mean()
    assert consistency > 0.7  # measured 0.88 here, 0.26 with the LayerNorm

    # The same checkpoint through the plain-torch path (what generate uses): the same hidden states, the
    # same encoding, and transformers is never imported for it (a fresh process).
    light = load_encoder(out, layer="weighted")
    assert type(light.model).__name__ == "LightWav2Vec2" and light.normalize == encoder.normalize
    reference_states = load_encoder(out, layer="weighted", plain_torch=False).hidden_states(audio)
    assert torch.allclose(light.hidden_states(audio), reference_states, atol=1e-5)
    code = ("import sys, numpy as np; from lattice_talk.core.speech.encoder import load_encoder; "
            f"e = load_encoder({str(out)!r}); s = e.hidden_states(np.zeros(16000, np.float32) + 0.01); "
            "assert s.shape[0] == 3, s.shape; assert 'transformers' not in sys.modules; print('ok')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "ok"

    config.update({FRONT_END_KEY: "log_mel_80"})  # a checkpoint of the first front end: one clear error
    with pytest.raises(LatticeTalkError, match="pretrain' again"):
        install(type(encoder.model)(config))


def test_plain_torch_encoder_matches_transformers(tmp_path):
    """Our log-mel front-end wav2vec 2.0 run in plain torch (what generate uses) gives transformers' hidden states,
    here with an odd positional kernel and a non-default LayerNorm epsilon; a damaged weights file is one clear
    error."""
    from lattice_talk.core.speech import frontend

    config = small_config(hidden_size=32, num_layers=2, num_heads=2, pos_conv_width=7, pos_conv_groups=2,
                          layer_norm_eps=1e-3, front_end="log_mel")
    torch.manual_seed(3)
    model = frontend.install(transformers.Wav2Vec2Model(config))
    model.save_pretrained(tmp_path / "ours")
    light = load_encoder(tmp_path / "ours")
    reference = load_encoder(tmp_path / "ours", plain_torch=False)
    assert type(light.model).__name__ == "LightWav2Vec2" and type(reference.model).__name__ == "Wav2Vec2Model"
    audio = speech_like(2.0)
    assert torch.allclose(light.hidden_states(audio), reference.hidden_states(audio), atol=1e-5)
    assert torch.allclose(light.encode(audio), reference.encode(audio), atol=1e-5)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "config.json").write_text((tmp_path / "ours" / "config.json").read_text())
    (damaged / "model.safetensors").write_bytes((tmp_path / "ours" / "model.safetensors").read_bytes()[:5000])
    with pytest.raises(LatticeTalkError, match="damaged: cannot load the wav2vec2 weights"):
        load_encoder(damaged)


def test_decoder_features_run_our_encoder_with_int8_linear_layers_close_to_fp32(tmp_path):
    """What generate reads on the CPU: our encoder's Linear layers in int8 (core.speech.cpu_int8), the features
    close to the fp32 encoder's."""
    from lattice_talk.core.speech import frontend
    from lattice_talk.core.speech.features import ssl_features

    torch.manual_seed(3)
    model = frontend.install(transformers.Wav2Vec2Model(small_config(hidden_size=32, num_layers=2, num_heads=2,
                                                                     front_end="log_mel")))
    model.save_pretrained(tmp_path / "ours")
    audio = speech_like(3.0)
    int8 = ssl_features(tmp_path / "ours")(audio).astype(np.float32)
    encoder = load_encoder(tmp_path / "ours")
    assert any(type(m) is torch.nn.Linear for m in encoder.model.modules())  # load_encoder itself stays fp32
    states = encoder.hidden_states(audio)  # (S, T, H) → (T, S·H) at the features' frames, as ssl_features does
    fp32 = encoder.frames_at(states.permute(1, 0, 2).reshape(states.shape[1], -1), len(int8), 50.0).numpy()
    fp32 = (fp32 - fp32.mean(0)) / (fp32.std(0) + 1e-3)
    cosine = (int8 * fp32).sum(1) / np.linalg.norm(int8, axis=1) / np.linalg.norm(fp32, axis=1)
    assert cosine.min() > 0.98 and np.abs(int8 - fp32).max() > 1e-3  # close, and int8 did run


@pytest.fixture(scope="module")
def decoder_corpus(tmp_path_factory):
    """A corpus with train and held-out utterances (a decoder's training needs both)."""
    from lattice_talk.core.data.corpus import synth_corpus

    root = tmp_path_factory.mktemp("decoder_corpus")
    synth_corpus(root, hours=0.004, seed=1, workers=1)
    return root


@pytest.mark.parametrize("kind", ["hubert", "wavlm"])
def test_a_speech_model_on_a_hubert_or_wavlm_encoder_generates_a_take(checkpoints, kind, decoder_corpus, tmp_path,
                                                                      no_network):
    """The README's pretrained-encoder workflow with tiny random-init HuBERT and WavLM saved and reloaded: the
    encoder inside the model folder, a decoder trained on its states, then `generate --speech-model`."""
    import shutil

    import soundfile

    from lattice_talk.core.clip import load_clip
    from lattice_talk.core.speech.features import LOG_MEL_AND_SSL_FEATURES

    model = tmp_path / f"{kind}_model"
    shutil.copytree(checkpoints[kind], model / "encoder")
    assert main(["speech", "train", "--corpus", str(decoder_corpus), "--out", str(model), "--encoder", str(model / "encoder"),
                 "--epochs", "1", "--steps-per-epoch", "1", "--hidden", "32", "--dilations", "1", "--calibrate-limit", "0",
                 "--quiet"]) == 0
    config = json.loads((model / "decoder.json").read_text())
    assert config["encoder"] == "encoder" and config["features"] == LOG_MEL_AND_SSL_FEATURES
    assert config["model"]["in_dim"] == 80 + 3 * TINY["hidden_size"]  # the bands + all 3 hidden states
    soundfile.write(tmp_path / "line.wav", speech_like(1.5), SR)
    assert main(["generate", str(tmp_path / "line.wav"), "--out", str(tmp_path / "take.npz"), "--speech-model", str(model),
                 "--quiet"]) == 0
    clip = load_clip(tmp_path / "take.npz")
    assert clip.n_frames == 45 and clip.provenance["features"] == LOG_MEL_AND_SSL_FEATURES
    assert np.isfinite(clip.expression).all() and np.isfinite(clip.jaw).all()
