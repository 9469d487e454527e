"""The speech pipeline end to end with a small random-init decoder saved and reloaded (real weights are
trained by `python -m lattice_talk speech train`; these tests check the plumbing, not the quality)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clip_fixtures import write_wav  # noqa: E402
from pipeline_fixtures import save_tiny_decoder  # noqa: E402
from lattice_talk.core.heads import create  # noqa: E402
from lattice_talk.core.jobs import run_sync  # noqa: E402
from lattice_talk.core.pipeline import Cancelled, GenerateRequest, GenerateSettings  # noqa: E402
from lattice_talk.core.speech.log_mel import N_MELS, log_mel  # noqa: E402
from lattice_talk.core.speech.pipeline import SpeechPipeline  # noqa: E402
from lattice_talk.core.phonemes import MOUTH_CLASSES  # noqa: E402
from lattice_talk.core.speech.model import DECODER_FILE, SEAL_DEFAULT, load_decoder, seal_window, write_seal  # noqa: E402
from lattice_talk.core.speech.train import SEAL_CANDIDATES  # noqa: E402


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return save_tiny_decoder(tmp_path_factory.mktemp("decoder"))


def speech(path, seconds, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    envelope = (np.sin(2 * np.pi * 2.5 * t) > 0).astype(float)  # syllable-like bursts and pauses
    return write_wav(path, 0.3 * envelope * np.sin(2 * np.pi * 150 * t) + 0.01 * rng.normal(size=len(t)))


def test_log_mel_frames_at_50_hz():
    assert log_mel(np.zeros(16000, np.float32) + 1e-3).shape == (50, N_MELS)
    assert log_mel(np.zeros(16321, np.float32) + 1e-3).shape == (52, N_MELS)


def test_pipeline_makes_a_deterministic_clip_on_the_default_head(model_dir, tmp_path):
    wav = speech(tmp_path / "line.wav", 3.0)
    head = create("default")
    request = GenerateRequest(audio_path=wav, head=head, settings=GenerateSettings(fps=24.0, seed=3, start_frame=10))
    stages = []
    clip = run_sync(SpeechPipeline(model_dir, threads=1), request, lambda stage, f: stages.append(stage))
    assert clip.n_frames == 72 and clip.fps == 24.0 and clip.start_frame == 10
    assert clip.expression_names == head.expression_names and clip.jaw.shape == (72, 3)
    assert clip.provenance["audio_sha256"] and stages[0] == "reading audio"
    again = run_sync(SpeechPipeline(model_dir, threads=1), request)
    assert np.array_equal(clip.expression, again.expression) and np.array_equal(clip.global_rotation, again.global_rotation)
    quiet = run_sync(SpeechPipeline(model_dir, threads=1), GenerateRequest(
        audio_path=wav, head=head, settings=GenerateSettings(fps=24.0, seed=3, intensity=0.0)))
    assert quiet.jaw.max() == 0.0  # intensity 0: a still mouth


def test_long_audio_goes_in_chunks_and_cancels_between_them(model_dir, tmp_path):
    wav = speech(tmp_path / "long.wav", 45.0)
    pipeline = SpeechPipeline(model_dir, threads=1)
    pipeline.prepare()
    request = GenerateRequest(audio_path=wav, head=create("default"))
    stages = []
    clip = pipeline.generate(request, lambda s, f: stages.append(s), lambda: False)
    assert clip.n_frames == 1350 and sum(s.startswith("speech") for s in stages) == 3
    calls = iter(range(100))
    with pytest.raises(Cancelled):
        pipeline.generate(request, lambda s, f: None, lambda: next(calls) >= 1)  # stop after the first chunk


def test_other_heads_get_the_motion_through_retargeting(model_dir, tmp_path):
    from flame_fixtures import build_flame_test_head

    wav = speech(tmp_path / "line.wav", 2.0)
    flame = create(build_flame_test_head().write(tmp_path)["npz"])  # FLAME's schema: 100 PCA expressions
    clip = run_sync(SpeechPipeline(model_dir, threads=1), GenerateRequest(audio_path=wav, head=flame))
    assert clip.head_id == flame.head_id and clip.n_frames == 60
    assert clip.provenance["converted_from"] == "lattice_talk:default_head"
    assert clip.expression.shape == (60, 100) and np.abs(clip.expression).max() <= 3.0


def test_missing_torch_is_one_clear_message(model_dir, monkeypatch):
    import builtins

    from lattice_talk.core.errors import LatticeTalkError

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name.split(".")[0] == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    with pytest.raises(LatticeTalkError, match="Install Dependencies"):
        SpeechPipeline(model_dir).prepare()


def test_jaw_loudness_proxy_on_constructed_signals():
    from lattice_talk.core.speech.real_clip_checks import jaw_loudness

    rate, fps = 16000, 30.0
    t = np.arange(4 * rate) / rate
    loud = (np.sin(2 * np.pi * 0.5 * t) > 0).astype(float)  # 1 s speech, 1 s silence, …
    audio = (0.3 * loud * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    frames = np.arange(120) / fps
    follows = 0.2 * (np.sin(2 * np.pi * 0.5 * frames) > 0)
    good = jaw_loudness(follows, audio, rate, fps)
    assert good["pass"] and good["silent_to_loud_jaw"] < 0.05 and good["jaw_loudness_corr"] > 0.9
    bad = jaw_loudness(np.full(120, 0.2), audio, rate, fps)  # mouth open all the time
    assert not bad["pass"]


def test_decoder_training_checkpoints_resumes_and_evaluates(tmp_path):
    from lattice_talk.core.data.corpus import synth_corpus
    from lattice_talk.core.landmark_rig import LandmarkRig
    from lattice_talk.core.speech.train import evaluate, load_examples, train_decoder
    from lattice_talk.core.speech.model import load_decoder

    synth_corpus(tmp_path / "corpus", hours=0.004, seed=1, workers=1)
    out = tmp_path / "decoder"
    first = train_decoder(tmp_path / "corpus", out, epochs=2, steps_per_epoch=2, batch_size=4)
    assert len(first["heldout"]) == 2 and (out / DECODER_FILE).is_file()
    resumed = train_decoder(tmp_path / "corpus", out, epochs=3, steps_per_epoch=2, batch_size=4)
    assert resumed["train"][:2] == first["train"] and len(resumed["train"]) == 3
    model, config = load_decoder(out)
    assert config["unit_names"] == list(create("default").expression_names)
    report = evaluate(model, load_examples(tmp_path / "corpus", "train", limit=2), LandmarkRig(create("default")))
    assert report["utterances"] == 2 and report["lip_vertex_error_mm"] > 0
    assert 0.0 <= report["bilabial_closure_rate"] <= 1.0
    # Fine-tuning starts from the given weights and adds the mouth-class head the old decoder lacked.
    from lattice_talk.cli import main

    assert main(["speech", "train", "--corpus", str(tmp_path / "corpus"), "--out", str(tmp_path / "tuned"), "--epochs", "1",
                 "--steps-per-epoch", "1", "--init-from", str(out), "--no-voice-perturbation", "--quiet"]) == 0
    tuned_model, tuned_config = load_decoder(tmp_path / "tuned")
    assert tuned_config["model"]["n_classes"] == len(MOUTH_CLASSES) and tuned_model.classes is not None
    assert tuned_config["model"]["hidden"] == config["model"]["hidden"] and tuned_config["voice_perturbation"] is False
    # The CLI calibrated the seal window on the corpus's held-out split and recorded it with the model.
    assert seal_window(tuned_config) in SEAL_CANDIDATES and "held-out" in tuned_config["seal"]["calibrated_on"]
    assert seal_window(config) == SEAL_DEFAULT  # a decoder trained without calibration keeps the old window


def test_seal_window_decides_where_lips_are_shut_and_calibration_picks_the_lowest_error(tmp_path):
    from lattice_talk.core.mouth import SEAL_JAW, SEAL_UNITS
    from lattice_talk.core.data.corpus import synth_corpus
    from lattice_talk.core.landmark_rig import LandmarkRig
    from lattice_talk.core.speech.train import calibrate_seal, load_examples
    from lattice_talk.core.speech.model import decode, predict

    synth_corpus(tmp_path / "corpus", hours=0.003, seed=2, workers=1)
    (tmp_path / "decoder").mkdir()
    model_dir = save_tiny_decoder(tmp_path / "decoder")
    model, config = load_decoder(model_dir)
    examples = load_examples(tmp_path / "corpus", "train", limit=2)
    names = tuple(config["unit_names"])
    ex = examples[0]
    raw_units, raw_jaw, _ = decode(model, ex.features, len(ex.jaw))
    always_units, always_jaw = predict(model, ex.features, len(ex.jaw), names, seal=(0.0, 1e-6))
    never_units, never_jaw = predict(model, ex.features, len(ex.jaw), names, seal=(1.0, 1.5))
    assert np.allclose(always_jaw, SEAL_JAW, atol=1e-4)  # every frame sealed
    assert np.allclose(always_units[:, names.index("jawOpen")], SEAL_UNITS.get("jawOpen", 0.0), atol=1e-4)
    assert np.allclose(never_jaw, raw_jaw) and np.allclose(never_units, raw_units)
    rig = LandmarkRig(create("default"))
    candidates = ((0.0, 1e-6), (1.0, 1.5))
    seal, rows = calibrate_seal(model, examples, rig, candidates, min_closure=0.0)
    assert [(r["from"], r["full"]) for r in rows] == list(candidates)
    assert seal == min(((r["from"], r["full"]) for r in rows), key=lambda c: rows[candidates.index(c)]["lip_vertex_error_mm"])
    # No window closes enough: the best-closing one wins (shutting every frame closes every p/b/m).
    assert calibrate_seal(model, examples, rig, candidates, min_closure=1.01)[0] == (0.0, 1e-6)
    write_seal(model_dir, seal, "test")
    assert seal_window(load_decoder(model_dir)[1]) == seal


def test_training_targets_and_the_lip_loss(tmp_path):
    from lattice_talk.core.data.corpus import synth_corpus
    from lattice_talk.core.landmark_rig import LandmarkRig
    from lattice_talk.core.mediapipe_points import LIPS
    from lattice_talk.core.speech.train import lip_vertex_error_mm, load_examples

    synth_corpus(tmp_path / "corpus", hours=0.002, seed=3, workers=1)
    example = load_examples(tmp_path / "corpus", "train", limit=1)[0]
    fps = example.utterance.fps
    for event in example.utterance.phonemes:  # every frame carries the class of the phoneme spoken then
        frame = int(np.ceil(event.start * fps))
        if frame / fps < event.end and frame < len(example.mouth_class):
            assert MOUTH_CLASSES[example.mouth_class[frame]] == event.mouth_class
    rig = LandmarkRig(create("default"), point_ids=LIPS)
    units = torch.from_numpy(example.units[None].astype(np.float32))
    jaw = torch.from_numpy(example.jaw[None].astype(np.float32))
    assert float(lip_vertex_error_mm(rig, units, jaw, units, jaw)) < 1e-6
    opened = lip_vertex_error_mm(rig, units, jaw + 0.1, units, jaw)  # 0.1 rad more jaw: lower lip drops mm
    assert 2.0 < float(opened) < 20.0


def test_voice_perturbation_moves_formants_together_and_masks_bands():
    from lattice_talk.core.speech import train

    features = np.zeros((10, N_MELS), np.float32)
    features[:, 40] = 5.0  # one formant-like peak
    rng = np.random.default_rng(4)
    peaks = set()
    for _ in range(30):
        out = train.perturb_voice(features, rng)
        assert out.shape == features.shape and out.dtype == np.float32
        if out.max() > 0:  # not masked away
            peaks.add(int(np.argmax(out[0])))
    # The peak lands anywhere within ±12 % of its band, not only where it was.
    assert len(peaks) > 3 and all(abs(p - 40) <= 40 * train.WARP_RANGE / (1 - train.WARP_RANGE) + 1 for p in peaks)
    blanked = [int((train.perturb_voice(np.ones((5, N_MELS), np.float32), np.random.default_rng(s)) == 0).all(axis=0).sum())
               for s in range(10)]
    assert max(blanked) > 0 and max(blanked) <= train.FREQUENCY_MASKS * train.MASK_BANDS


def test_a_decoder_on_our_ssl_encoder_trains_evaluates_and_generates(tmp_path):
    """The SSL front end end to end: pretrain a tiny log-mel-front-end wav2vec 2.0, train a decoder on all its
    hidden states through the CLI (calibration included), then generate with it through the pipeline."""
    import json

    from lattice_talk.cli import main
    from lattice_talk.core.data.corpus import synth_corpus
    from lattice_talk.core.speech.features import SSL_FEATURES
    from lattice_talk.core.speech.pretrain import pretrain, small_config

    synth_corpus(tmp_path / "corpus", hours=0.004, seed=1, workers=1)
    config = small_config(hidden_size=32, num_layers=2, num_heads=2, codevectors_per_group=8, proj_codevector_dim=16,
                          num_negatives=5, mask_time_length=5, front_end="log_mel")
    pretrain(tmp_path / "corpus", tmp_path / "ssl", steps=1, batch_seconds=2.0, crop_seconds=1.0, config=config)
    assert main(["speech", "train", "--corpus", str(tmp_path / "corpus"), "--out", str(tmp_path / "decoder"),
                 "--epochs", "1", "--steps-per-epoch", "1", "--hidden", "32", "--dilations", "1", "2",
                 "--encoder", str(tmp_path / "ssl"), "--encoder-states-only", "--quiet"]) == 0
    decoder_config = json.loads((tmp_path / "decoder" / "decoder.json").read_text())
    assert decoder_config["features"] == SSL_FEATURES and decoder_config["voice_perturbation"] is False
    assert decoder_config["model"]["in_dim"] == 3 * 32  # the projected log-mel and both transformer layers
    assert decoder_config["seal"]["calibrated_on"].startswith("corpus held-out")
    assert main(["speech", "eval", "--model", str(tmp_path / "decoder"), "--corpus", str(tmp_path / "corpus"),
                 "--json", str(tmp_path / "eval.json")]) == 0
    assert json.loads((tmp_path / "eval.json").read_text())["heldout"]["lip_vertex_error_mm"] > 0
    clip = run_sync(SpeechPipeline(tmp_path / "decoder", threads=1),
                    GenerateRequest(audio_path=speech(tmp_path / "line.wav", 2.0), head=create("default"),
                                    settings=GenerateSettings(fps=25.0)))
    assert clip.n_frames == 50 and clip.provenance["features"] == SSL_FEATURES and np.isfinite(clip.expression).all()
    # Encoder states next to the log-mel bands: a log-mel decoder fine-tuned with the encoder starts as itself.
    from lattice_talk.core.speech.features import LOG_MEL_AND_SSL_FEATURES, decoder_features
    from lattice_talk.core.errors import LatticeTalkError
    from lattice_talk.core.speech.train import load_examples
    from lattice_talk.core.speech.model import decode

    (tmp_path / "log_mel").mkdir()
    start = save_tiny_decoder(tmp_path / "log_mel")
    # The encoder as it ships, inside the model folder: bare model, fp16, no optimizer or trainer state.
    from safetensors import safe_open

    from lattice_talk.core.speech.encoder import load_encoder

    export = ["speech", "export-encoder", "--checkpoint", str(tmp_path / "ssl"), "--out", str(tmp_path / "trained" / "encoder")]
    assert main(export) == 0
    assert sorted(p.name for p in (tmp_path / "trained" / "encoder").iterdir()) == [
        "config.json", "model.safetensors", "preprocessor_config.json"]
    with safe_open(str(tmp_path / "trained" / "encoder" / "model.safetensors"), "pt") as weights:
        assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch.float16}
        assert not any(k.startswith("quantizer") for k in weights.keys())
    probe = speech(tmp_path / "probe.wav", 1.0)
    probe_audio = __import__("soundfile").read(probe, dtype="float32")[0]
    exported = load_encoder(tmp_path / "trained" / "encoder").hidden_states(probe_audio)
    original = load_encoder(tmp_path / "ssl").hidden_states(probe_audio)
    assert torch.allclose(exported, original, atol=0.05 * float(original.abs().max()))
    assert main(export) != 0  # never into a folder that holds something
    assert main(["speech", "train", "--corpus", str(tmp_path / "corpus"), "--out", str(tmp_path / "trained"),
                 "--epochs", "1", "--steps-per-epoch", "1", "--lr", "1e-12", "--init-from", str(start),
                 "--encoder", str(tmp_path / "trained" / "encoder"), "--calibrate-limit", "0", "--quiet"]) == 0
    (tmp_path / "trained").rename(tmp_path / "widened")  # ... moves with it
    widened, widened_config = load_decoder(tmp_path / "widened")
    (tmp_path / "orphan").mkdir()  # the decoder without the encoder it names: one clear error when loading
    for name in ("decoder.json", DECODER_FILE):
        (tmp_path / "orphan" / name).write_bytes((tmp_path / "widened" / name).read_bytes())
    with pytest.raises(LatticeTalkError, match="the speech encoder its decoder.json names as 'encoder' \\(encoder\\) is not there"):
        SpeechPipeline(tmp_path / "orphan", threads=1).prepare()
    assert widened_config["features"] == LOG_MEL_AND_SSL_FEATURES and widened_config["voice_perturbation"] is True
    assert widened_config["encoder"] == "encoder" and decoder_config["encoder"] == str((tmp_path / "ssl").resolve())
    assert widened_config["model"]["in_dim"] == N_MELS + 3 * 32
    audio = load_examples(tmp_path / "corpus", "heldout", limit=1)[0].utterance.audio
    both = decoder_features(widened_config, tmp_path / "widened")(audio)
    assert both.shape == (len(log_mel(audio)), N_MELS + 3 * 32) and np.isfinite(both).all()
    assert np.allclose(both[:, :N_MELS], log_mel(audio), atol=5e-3)  # the bands come first, frame for frame
    n_frames = int(np.ceil(len(audio) / 16000 * 30))
    widened_out = decode(widened, both, n_frames)
    start_out = decode(load_decoder(start)[0], log_mel(audio), n_frames)
    for a, b in zip(widened_out, start_out):
        assert np.allclose(a, b, atol=2e-3)
    assert not widened.inp.weight[:, N_MELS:].any()  # the states enter at zero weight: fine-tuning adds them
    shifted = both.astype(np.float32)
    shifted[:, N_MELS:] += 1.0
    assert np.array_equal(decode(widened, shifted, n_frames)[0], widened_out[0])
    # An encoder-states decoder cannot be widened: one clear error, nothing written.
    assert main(["speech", "train", "--corpus", str(tmp_path / "corpus"), "--out", str(tmp_path / "refused"),
                 "--epochs", "1", "--steps-per-epoch", "1", "--init-from", str(tmp_path / "decoder"),
                 "--encoder", str(tmp_path / "ssl"), "--quiet"]) != 0
    assert not (tmp_path / "refused").exists()
    # ... and widens once more with the phonetic encoder's states after those: it starts as itself again, saved with
    # the training's standardisation folded in, so it reads the raw states one encoder pass gives the heads too.
    from test_phonetic_encoder import tiny_whisper

    from lattice_talk.core.speech.features import LOG_MEL_SSL_AND_PHONETIC_FEATURES, StackedFeatures

    import shutil

    tiny_whisper(tmp_path / "whisper.bin")
    folder = tmp_path / "phonetic"  # both encoders inside the model folder, as it ships
    shutil.copytree(tmp_path / "widened" / "encoder", folder / "encoder")
    assert main(["speech", "import-whisper", "--ct2", str(tmp_path / "whisper.bin"), "--layers", "2", "--out",
                 str(folder / "phonetic_encoder")]) == 0
    phonetic_train = ["speech", "train", "--corpus", str(tmp_path / "corpus"), "--out", str(folder), "--epochs", "1",
                      "--steps-per-epoch", "1", "--lr", "1e-12", "--init-from", str(tmp_path / "widened"),
                      "--encoder", str(folder / "encoder"), "--phonetic-encoder", str(folder / "phonetic_encoder"),
                      "--calibrate-limit", "0", "--quiet"]
    assert main(phonetic_train[:-3] + ["--encoder-states-only", "--quiet"]) != 0  # the states follow log-mel + SSL
    assert main(phonetic_train) == 0
    phonetic, phonetic_config = load_decoder(folder)
    assert phonetic_config["features"] == LOG_MEL_SSL_AND_PHONETIC_FEATURES
    assert phonetic_config["phonetic_encoder"] == "phonetic_encoder"
    assert phonetic_config["model"]["in_dim"] == N_MELS + 3 * 32 + 32
    stacked = decoder_features(phonetic_config, folder)
    assert isinstance(stacked, StackedFeatures) and stacked.encoder == "phonetic_encoder"
    states = stacked.phonetic(audio)
    assert np.array_equal(stacked(audio), stacked.stack(audio, states))
    assert np.allclose(stacked(audio)[:, :N_MELS + 3 * 32], both, atol=5e-3)
    for a, b in zip(decode(phonetic, stacked(audio), n_frames), widened_out):
        assert np.allclose(a, b, atol=5e-3)
    clip = run_sync(SpeechPipeline(folder, threads=1),
                    GenerateRequest(audio_path=speech(tmp_path / "line.wav", 2.0), head=create("default"),
                                    settings=GenerateSettings(fps=25.0)))
    assert clip.provenance["features"] == LOG_MEL_SSL_AND_PHONETIC_FEATURES and np.isfinite(clip.expression).all()
    # Fine-tuned again from itself, with weight on the states: the saved (folded) layer is unfolded for training on
    # standardised states and folded again when saved, so it reads the raw states as it did.
    from safetensors.torch import load_file, save_file

    weights = load_file(str(folder / DECODER_FILE))
    weights["inp.weight"][:, N_MELS + 3 * 32:] = 0.05 * torch.randn_like(weights["inp.weight"][:, N_MELS + 3 * 32:].float()).half()
    save_file(weights, str(folder / DECODER_FILE))
    before = decode(load_decoder(folder)[0], stacked(audio), n_frames)
    again = phonetic_train[:]
    again[again.index("--out") + 1], again[again.index("--init-from") + 1] = str(tmp_path / "again"), str(folder)
    assert main(again) == 0
    again_config = json.loads((tmp_path / "again" / "decoder.json").read_text())
    assert again_config["phonetic_encoder"] == str((folder / "phonetic_encoder").resolve())  # outside: its path
    for a, b in zip(decode(load_decoder(tmp_path / "again")[0], stacked(audio), n_frames), before):
        assert np.allclose(a, b, atol=5e-3)


def test_the_phonetic_states_standardisation_folds_into_the_first_layer_and_back():
    import torch

    from lattice_talk.core.speech.decoder import MotionDecoder
    from lattice_talk.core.speech.train import Standardization, fold_input_standardization

    torch.manual_seed(0)
    model = MotionDecoder(12, 52, hidden=16, dilations=(1,))
    rng = np.random.default_rng(0)
    standardization = Standardization(5, rng.normal(size=7).astype(np.float32), rng.uniform(0.5, 3.0, 7).astype(np.float32))
    raw = rng.normal(3.0, 2.0, size=(40, 12)).astype(np.float32)
    read = raw.copy()
    read[:, 5:] = (raw[:, 5:] - standardization.mean) / standardization.std
    state = model.state_dict()
    folded = fold_input_standardization(state, standardization)
    layer = torch.nn.Conv1d(12, 16, 1)
    outputs = []
    for weights, x in ((state, read), (folded, raw)):
        layer.load_state_dict({"weight": weights["inp.weight"], "bias": weights["inp.bias"]})
        outputs.append(layer(torch.from_numpy(x).T[None]).detach().numpy())
    assert np.allclose(outputs[0], outputs[1], atol=1e-4)
    back = fold_input_standardization(folded, standardization, unfold=True)
    assert all(torch.allclose(back[k], state[k], atol=1e-5) for k in ("inp.weight", "inp.bias"))


def test_generate_with_a_chosen_speech_model_folder(model_dir, tmp_path):
    """`generate --speech-model DIR` / the preference's model folder: that model makes the take; a folder
    without a trained model is one clear error before any work."""
    import hashlib

    from lattice_talk.cli import main
    from lattice_talk.core.clip import load_clip
    from lattice_talk.core.errors import LatticeTalkError
    from lattice_talk.core.pipeline_registry import get_pipeline

    wav = speech(tmp_path / "line.wav", 1.0)
    assert main(["generate", str(wav), "--out", str(tmp_path / "take.npz"), "--speech-model", str(model_dir), "--quiet"]) == 0
    provenance = load_clip(tmp_path / "take.npz").provenance
    assert provenance["model_sha256"] == hashlib.sha256((model_dir / DECODER_FILE).read_bytes()).hexdigest()
    pipeline = get_pipeline(speech_model=model_dir, threads=1)
    assert pipeline.model_dir == model_dir and pipeline.threads == 1
    (tmp_path / "empty").mkdir()
    with pytest.raises(LatticeTalkError, match="no trained speech model there"):
        get_pipeline(speech_model=tmp_path / "empty")
    assert main(["generate", str(wav), "--out", str(tmp_path / "none.npz"), "--speech-model", str(tmp_path / "empty"),
                 "--quiet"]) != 0
    assert not (tmp_path / "none.npz").exists()
