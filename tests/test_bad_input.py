"""The bad-input corpus: every surface a user reaches (the CLI's generate and apply, clip and preset files, speech-model
folders, outputs, the Blender operators) fed damaged, hostile or wrong input made here with fixed seeds.

Each case states the exit code (or operator report) it must give and checks that nothing was lost: no file in its
folder written, changed or removed (the run's working folder is that folder too), and the scene as it was. Bad
input is one message naming the file or option — never a traceback or "unexpected error". Runs in-process on the
real speech pipeline and real Blender.
"""

from __future__ import annotations

import json
import resource
import shutil
import signal
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="the corpus drives the CLI's scene commands and the operators")
pytest.importorskip("soundfile")
pytest.importorskip("torch")

import bad_input_fixtures as make  # noqa: E402
from clip_fixtures import make_clip, scene_snapshot  # noqa: E402
from lattice_talk.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main  # noqa: E402
from lattice_talk.core.character_map import CharacterMapError, load_preset  # noqa: E402
from lattice_talk.core.heads import create  # noqa: E402

pytestmark = pytest.mark.blender


@dataclass(frozen=True)
class Case:
    name: str
    argv: Callable[[Path], list[str]]  # makes its files in the folder and returns the command line
    says: str  # part of the one error message
    code: int = EXIT_BAD_INPUT


def generate(audio: Callable[[Path], Path], *options: str, out: str = "take.npz") -> Callable[[Path], list[str]]:
    return lambda d: ["generate", str(audio(d)), "--out", str(d / out) if out else out, "--quiet", *options]


def with_file(option: str, maker: Callable[[Path], Path], out: str = "take.npz") -> Callable[[Path], list[str]]:
    return lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", str(d / out), "--quiet", option, str(maker(d))]


def apply(clip: Callable[[Path], Path], *options: str) -> Callable[[Path], list[str]]:
    return lambda d: ["apply", str(clip(d)), "--out", str(d / "scene.blend"), *options]


def apply_with(option: str, maker: Callable[[Path], Path], out: str = "scene.blend") -> Callable[[Path], list[str]]:
    return lambda d: ["apply", str(make.json_clip(d / "clip.json")), "--out", str(d / out), option, str(maker(d))]


def model(damage: Callable[[Path], object]) -> Callable[[Path], Path]:
    """The shipped speech model copied into the folder with one thing damaged."""
    def folder(d: Path) -> Path:
        copy = make.speech_model_copy(d / "model")
        damage(copy)
        return copy
    return folder


def wav_of(samples: Callable[[], np.ndarray], subtype: str = "FLOAT", rate: int = make.RATE, name: str = "line.wav"):
    return lambda d: make.wav(d / name, samples(), rate, subtype)


def spiked(value: float, every: int = 7) -> np.ndarray:
    samples = make.speech_like()
    samples[::every] = value
    return samples


def stereo_with_nan() -> np.ndarray:
    samples = np.stack([make.speech_like(), make.speech_like(seed=1)], 1)
    samples[500, 1] = np.nan
    return samples


def truncated(maker: Callable[[Path], Path], keep: int) -> Callable[[Path], Path]:
    def cut(d: Path) -> Path:
        path = maker(d)
        path.write_bytes(path.read_bytes()[:keep])
        return path
    return cut


def renamed(maker: Callable[[Path], Path], name: str) -> Callable[[Path], Path]:
    return lambda d: maker(d).rename(d / name)


def folder_named(name: str) -> Callable[[Path], Path]:
    def mkdir(d: Path) -> Path:
        (d / name).mkdir()
        return d / name
    return mkdir


def header_field(offset: int, fmt: str, value) -> Callable[[Path], Path]:
    """A 16-bit WAV with one header field overwritten (offsets of the canonical 44-byte header)."""
    def patch(d: Path) -> Path:
        path = make.wav_with_header_rate(d / "line.wav", make.RATE)
        data = bytearray(path.read_bytes())
        data[offset:offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
        path.write_bytes(bytes(data))
        return path
    return patch


def with_transcript(body: bytes) -> Callable[[Path], list[str]]:
    """A line whose transcript beside it (line.txt) holds ``body``."""
    def argv(d: Path) -> list[str]:
        (d / "line.txt").write_bytes(body)
        return ["generate", str(make.wav(d / "line.wav")), "--out", str(d / "take.npz"), "--quiet"]
    return argv


def json_clip_with(literal: str, replacement: str) -> Callable[[Path], Path]:
    """A JSON clip with ``literal`` written as ``replacement`` (what json.dumps cannot write: NaN, huge numbers)."""
    def edit(d: Path) -> Path:
        path = make.json_clip(d / "clip.json")
        return make.text(path, path.read_text().replace(literal, replacement))
    return edit


def _npz(path: Path, **arrays) -> Path:
    np.savez(path, **arrays)
    return path


def _npy(path: Path, array: np.ndarray) -> Path:
    np.save(path, array)
    return path


def _bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _sparse(path: Path, size: int) -> Path:
    """A file of ``size`` bytes that takes no disk space."""
    with open(path, "wb") as fh:
        fh.truncate(size)
    return path


AUDIO = [
    Case("audio missing", generate(lambda d: d / "nowhere.wav"), "audio file not found"),
    Case("audio an empty folder", generate(folder_named("takes")), "no input files matched"),
    Case("audio empty", generate(lambda d: make.text(d / "line.wav", "")), "empty (0 bytes)"),
    Case("audio random bytes", generate(lambda d: make.random_bytes(d / "line.wav", seed=1)), "cannot decode"),
    Case("audio random bytes as flac", generate(lambda d: make.random_bytes(d / "line.flac", seed=2)), "cannot decode"),
    Case("audio random bytes as mp3", generate(lambda d: make.random_bytes(d / "line.mp3", seed=3)), "cannot decode"),
    Case("audio random bytes as ogg", generate(lambda d: make.random_bytes(d / "line.ogg", seed=4)), "cannot decode"),
    Case("audio text renamed .wav", generate(lambda d: make.text(d / "line.wav")), "cannot decode"),
    Case("audio PNG renamed .wav", generate(lambda d: make.image(d / "line.wav")), "cannot decode"),
    Case("audio header only", generate(truncated(lambda d: make.wav(d / "line.wav"), 44)), "no audio samples"),
    Case("audio header cut", generate(truncated(lambda d: make.wav(d / "line.wav"), 20)), "cannot decode"),
    Case("audio 50 ms", generate(wav_of(lambda: make.speech_like(0.05))), "at least 0.1 s"),
    Case("audio silent", generate(wav_of(lambda: np.zeros(16000, np.float32), "PCM_16")), "the file is silent"),
    Case("audio near silent", generate(wav_of(lambda: make.speech_like() * 1e-4)), "the file is silent"),
    Case("audio NaN sample", generate(wav_of(lambda: spiked(np.nan, 4001))), "NaN or inf"),
    Case("audio inf sample", generate(wav_of(lambda: spiked(np.inf, 4001))), "NaN or inf"),
    Case("audio stereo, NaN in one channel", generate(wav_of(stereo_with_nan)), "NaN or inf"),
    Case("audio float samples of 1e20", generate(wav_of(lambda: spiked(1e20))), "samples reach 1e+20"),
    Case("audio float samples of 3e38", generate(wav_of(lambda: spiked(3e38, 101))), "samples reach 3e+38"),
    Case("audio header says 3 Hz", generate(lambda d: make.wav_with_header_rate(d / "line.wav", 3)), "sample rate 3 Hz"),
    Case("audio header says 1 Hz", generate(lambda d: make.wav_with_header_rate(d / "line.wav", 1)), "sample rate 1 Hz"),
    Case("audio header says 2 MHz", generate(lambda d: make.wav_with_header_rate(d / "line.wav", 2_000_000)),
         "sample rate 2000000 Hz"),
    Case("audio header says 0 channels", generate(header_field(22, "<H", 0)), "cannot decode"),
    Case("audio header says 0 bits", generate(header_field(34, "<H", 0)), "cannot decode"),
    Case("audio FIFO", generate(lambda d: make.fifo(d / "line.wav")), "is a pipe (FIFO)"),
    Case("audio /dev/zero", generate(lambda d: Path("/dev/zero")), "is a device"),
    Case("audio a video without sound", generate(lambda d: make.video(d / "clip.mp4", frames=3)), "no sound track"),
    Case("audio a damaged video", generate(lambda d: make.random_bytes(d / "clip.mp4", seed=5)), "cannot decode"),
    Case("audio truncated FLAC", generate(truncated(lambda d: make.wav(d / "line.flac", subtype="PCM_16"), 300)),
         "line.flac"),
    Case("audio transcript beside it is not UTF-8", with_transcript(b"\xff\xfe\xfa bad"), "save it as UTF-8"),
]

OPTIONS = [
    Case(f"{option} {value}", generate(lambda d: make.wav(d / "line.wav"), option, value), says)
    for option, value, says in [
        ("--fps", "0", "frames per second: 0.0 is out of range (1–240)"),
        ("--fps", "nan", "frames per second: nan is out of range"),
        ("--fps", "inf", "frames per second: inf is out of range"),
        ("--fps", "-30", "frames per second: -30.0 is out of range"),
        ("--fps", "1e7", "frames per second: 10000000.0 is out of range"),
        ("--seed", "-1", "seed: -1 is out of range (0–4294967295)"),
        ("--seed", str(2**32), "seed: 4294967296 is out of range"),
        ("--seed", "9" * 400, "seed: 999999999999…(400 characters) is out of range"),
        ("--intensity", "5", "intensity: 5.0 is out of range (0–3)"),
        ("--intensity", "nan", "intensity: nan is out of range"),
        ("--intensity", "1e400", "intensity: inf is out of range"),
        ("--head-motion", "-0.5", "head motion: -0.5 is out of range"),
        ("--head-motion", "1e400", "head motion: inf is out of range"),
    ]
] + [
    Case("--head missing", with_file("--head", lambda d: d / "flame.pkl"), "flame.pkl"),
    Case("--head a text file", with_file("--head", lambda d: make.text(d / "flame.pkl")), "flame.pkl"),
    Case("--head random bytes .npz", with_file("--head", lambda d: make.random_bytes(d / "head.npz", seed=6)), "head.npz"),
    Case("--embedding missing", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", str(d / "t.npz"),
                                           "--embedding", str(d / "emb.npz")], "emb.npz"),
    Case("--video missing", with_file("--video", lambda d: d / "ref.mp4"), "video file not found"),
    Case("--video a folder for one input", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", str(d / "t.npz"),
                                                      "--video", str(folder_named("videos")(d) / "line.mp4")],
         "video file not found"),
    Case("--video a text file", with_file("--video", lambda d: make.text(d / "ref.mp4")), "ref.mp4"),
    Case("--video a PNG", with_file("--video", lambda d: make.image(d / "ref.mp4")), "still PNG image"),
    Case("--video a FIFO", with_file("--video", lambda d: make.fifo(d / "ref.mp4")), "is a pipe (FIFO)"),
    Case("--video random bytes", with_file("--video", lambda d: make.random_bytes(d / "ref.mp4", seed=7)), "ref.mp4"),
    Case("--video without a face", with_file("--video", lambda d: make.video(d / "ref.mp4", face=False)),
         "a face was found in 0 of 25 frames"),
    Case("--video of one frame", with_file("--video", lambda d: make.video(d / "ref.mp4", frames=1)),
         "holds a single frame"),
    Case("--video-offset without --video", generate(lambda d: make.wav(d / "line.wav"), "--video-offset", "0.2"),
         "it places a reference video"),
    Case("--video-offset NaN", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", str(d / "t.npz"),
                                          "--video", str(make.video(d / "ref.mp4", frames=3)), "--video-offset", "nan"],
         "--video-offset: nan is out of range"),
    Case("--video-offset past the video", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", str(d / "t.npz"),
                                                     "--video", str(make.video(d / "ref.mp4")), "--video-offset", "30"],
         "share no frame the face was seen on"),
    Case("--video-model without weights", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", str(d / "t.npz"),
                                                     "--video", str(make.video(d / "ref.mp4", frames=3)),
                                                     "--video-model", str(folder_named("vm")(d))], "video_model.safetensors"),
]

MODELS = [
    Case("speech model folder missing", with_file("--speech-model", lambda d: d / "nomodel"), "no trained speech model"),
    Case("speech model: decoder.safetensors random bytes",
         with_file("--speech-model", model(lambda m: make.random_bytes(m / "decoder.safetensors", seed=8))),
         "decoder.safetensors: the weights are damaged"),
    Case("speech model: decoder.safetensors truncated",
         with_file("--speech-model", model(lambda m: (m / "decoder.safetensors").write_bytes(
             (m / "decoder.safetensors").read_bytes()[:5000]))), "decoder.safetensors: the weights are damaged"),
    Case("speech model: decoder.json without \"model\"",
         with_file("--speech-model", model(lambda m: make.edit_decoder_json(m, lambda c: c.pop("model")))),
         "needs a \"model\" object"),
    Case("speech model: decoder.json not JSON", with_file("--speech-model", model(lambda m: make.text(m / "decoder.json"))),
         "decoder.json: not valid JSON"),
    Case("speech model: decoder.json nested 100,000 deep",
         with_file("--speech-model", model(lambda m: make.text(m / "decoder.json", make.deep_json()))), "nested more than"),
    Case("speech model: decoder.json hidden 10⁹",
         with_file("--speech-model", model(lambda m: make.edit_decoder_json(m, lambda c: c["model"].update(hidden=10**9)))),
         "model.hidden: 1000000000 is out of range"),
    Case("speech model: decoder.json hidden 400 digits",
         with_file("--speech-model", model(lambda m: (m / "decoder.json").write_text(
             (m / "decoder.json").read_text().replace('"hidden": 160', '"hidden": ' + "7" * 400)))), "is too large"),
    Case("speech model: decoder.json dilations not a list",
         with_file("--speech-model", model(lambda m: make.edit_decoder_json(m, lambda c: c["model"].update(dilations=3)))),
         "model.dilations must list"),
    Case("speech model: decoder.json an unknown model field",
         with_file("--speech-model", model(lambda m: make.edit_decoder_json(m, lambda c: c["model"].update(evil=1)))),
         "needs a \"model\" object"),
    Case("speech model: decoder.json unit names short",
         with_file("--speech-model", model(lambda m: make.edit_decoder_json(m, lambda c: c["unit_names"].pop()))),
         "one unit name per unit"),
    Case("speech model: decoder.json seal not an object",
         with_file("--speech-model", model(lambda m: make.edit_decoder_json(m, lambda c: c.update(seal=[0.3, 0.7])))),
         "\"seal\" must be an object"),
    Case("speech model: decoder.json seal from NaN",
         with_file("--speech-model", model(lambda m: (m / "decoder.json").write_text(
             json.dumps({**json.loads((m / "decoder.json").read_text()), "seal": {"from": "x", "full": 1}})))),
         "seal.from: 'x' is not a number"),
    Case("speech model: decoder.json unknown features",
         with_file("--speech-model", model(lambda m: make.edit_decoder_json(m, lambda c: c.update(features="magic")))),
         "decoder features 'magic' are not known"),
    Case("speech model: decoder.json without its encoder",
         with_file("--speech-model", model(lambda m: make.edit_decoder_json(m, lambda c: c.pop("encoder")))),
         "the speech encoder its decoder.json names"),
    Case("speech model: weights of another size",
         with_file("--speech-model", model(lambda m: make.edit_decoder_json(m, lambda c: c["model"].update(hidden=32)))),
         "do not match decoder.json"),
    Case("speech model: encoder folder removed",
         with_file("--speech-model", model(lambda m: shutil.rmtree(m / "encoder"))),
         "the speech encoder its decoder.json names"),
    Case("speech model: encoder weights random bytes",
         with_file("--speech-model", model(lambda m: make.random_bytes(m / "encoder" / "model.safetensors", seed=9))),
         "cannot load the wav2vec2 weights"),
    Case("speech model: encoder config.json not JSON",
         with_file("--speech-model", model(lambda m: make.text(m / "encoder" / "config.json"))), "config.json"),
    Case("speech model: encoder config.json nested 100,000 deep",
         with_file("--speech-model", model(lambda m: make.text(m / "encoder" / "config.json", make.deep_json()))),
         "config.json"),
    Case("speech model: encoder preprocessor config not JSON",
         with_file("--speech-model", model(lambda m: make.text(m / "encoder" / "preprocessor_config.json"))),
         "preprocessor_config.json"),
]

OUTPUTS = [
    Case("--out take.mp4", generate(lambda d: make.wav(d / "line.wav"), out="take.mp4"), "unknown kind of output (.mp4)"),
    Case("--out take.txt", generate(lambda d: make.wav(d / "line.wav"), out="take.txt"), "unknown kind of output (.txt)"),
    Case("--out ''", generate(lambda d: make.wav(d / "line.wav"), out=""), "--out is empty"),
    Case("--out '   '", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", "   "], "--out is empty"),
    Case("--out the input", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", str(d / "line.wav")],
         "is an existing file"),
    Case("--out the input, by another path", lambda d: ["generate", str(renamed(lambda e: make.wav(e / "in.wav"), "in.npz")(d)),
                                                        "--out", str(d / "." / "in.npz")], "is the input"),
    Case("--out under a file", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", str(d / "line.wav" / "t.npz")],
         "which is a file, not a folder"),
    Case("--out deep under a file", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out",
                                               str(d / "line.wav" / "a" / "b" / "t.blend")], "which is a file"),
    Case("--out a folder named .npz", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out",
                                                 str(folder_named("take.npz")(d))], "take.npz"),
    Case("--out /dev/null", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", "/dev/null"],
         "is an existing file"),
    Case("--embedding a folder", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", str(d / "t.npz"),
                                            "--embedding", str(folder_named("emb")(d))], "is a folder"),
    Case("--out a file for several inputs", lambda d: ["generate", str(make.wav(d / "a.wav")), str(make.wav(d / "b.wav")),
                                                       "--out", str(d / "take.npz")], "several inputs need an output folder"),
    Case("--render take.txt", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", str(d / "t.blend"),
                                         "--render", str(d / "take.txt")], "unknown kind of output (.txt)"),
    Case("--render the reference video", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", str(d / "t.blend"),
                                                    "--video", str(make.video(d / "ref.mp4", frames=3)),
                                                    "--render", str(d / "ref.mp4")], "is the input"),
    Case("--render with an .npz output", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", str(d / "t.npz"),
                                                    "--render", str(d / "t.mp4")], "--render needs .blend outputs"),
    Case("--transcript for a batch", lambda d: ["generate", str(make.wav(d / "a.wav")), str(make.wav(d / "b.wav")),
                                                "--out", str(d / "out"), "--transcript", "hello"], "--transcript is the text"),
    Case("no input matches", lambda d: ["generate", str(d / "*.wav"), "--out", str(d / "out")], "no input files matched"),
    Case("batch inputs share a name", lambda d: ["generate", str(make.wav(d / "a.wav")), str(make.wav(folder_named("x")(d) / "a.wav")),
                                                 "--out", str(d / "out")], "inputs share file names"),
]

CLIPS = [
    Case("clip missing", apply(lambda d: d / "nowhere.npz"), "no such clip file"),
    Case("clip a folder", apply(folder_named("clip.npz")), "is a folder"),
    Case("clip a FIFO", apply(lambda d: make.fifo(d / "clip.npz")), "is a pipe (FIFO)"),
    Case("clip empty", apply(lambda d: make.text(d / "clip.npz", "")), "empty (0 bytes)"),
    Case("clip .txt", apply(lambda d: make.text(d / "clip.txt")), "unknown clip file type"),
    Case("clip npz random bytes", apply(lambda d: make.random_bytes(d / "clip.npz", seed=10)), "truncated or damaged"),
    Case("clip npz truncated", apply(truncated(lambda d: make.npz_clip(d / "clip.npz"), 200)), "clip.npz"),
    Case("clip npz without metadata", apply(lambda d: _npz(d / "clip.npz", jaw=np.zeros((3, 3), np.float32))),
         "without clip metadata"),
    Case("clip npz a single array", apply(renamed(lambda d: _npy(d / "clip.npy", np.zeros(3)), "clip.npz")),
         "single .npy array"),
    Case("clip npz inflating to 2 M frames", apply(lambda d: make.npz_inflating(d / "clip.npz")), "2,000,000 frames"),
    Case("clip npz promising 1.2 GiB", apply(lambda d: make.npz_inflating(d / "clip.npz", "expression", (100_000, 3000), 64)),
         "1.1 GiB"),
    Case("clip npz metadata nested 100,000 deep", apply(lambda d: make.npz_clip(d / "clip.npz", metadata=make.deep_json())),
         "nested more than"),
    Case("clip npz metadata not JSON", apply(lambda d: make.npz_clip(d / "clip.npz", metadata="{fps: 30")), "not valid JSON"),
    Case("clip npz NaN in a channel", apply(lambda d: make.npz_clip(d / "clip.npz", {"jaw": np.full((5, 3), np.nan, np.float32)})),
         "non-finite value"),
    Case("clip npz wrong channel shape", apply(lambda d: make.npz_clip(d / "clip.npz", {"jaw": np.zeros((5, 4), np.float32)})),
         "shape (5, 4)"),
    Case("clip npz unknown channel", apply(lambda d: make.npz_clip(d / "clip.npz", {"tail": np.zeros((5, 3), np.float32)})),
         "unknown channels tail"),
    Case("clip npz object array", apply(lambda d: make.npz_clip(d / "clip.npz", {"jaw": np.array([None, 1], object)})),
         "clip.npz"),
    Case("clip json nested 100,000 deep", apply(lambda d: make.text(d / "clip.json", make.deep_json())), "nested more than"),
    Case("clip json nested 40 deep", apply(lambda d: make.text(d / "clip.json", make.deep_json(40))), "nested more than 32"),
    Case("clip json NaN", apply(json_clip_with("0.1", "NaN")), "holds NaN"),
    Case("clip json 400-digit fps", apply(json_clip_with("30.0", "9" * 400)), "is too large"),
    Case("clip json fps 1e999", apply(json_clip_with("30.0", "1e999")), "is too large"),
    Case("clip json fps 0", apply(lambda d: make.json_clip(d / "clip.json", fps=0)), "fps must be positive"),
    Case("clip json fps 1e-300 (resampling would make 10³⁰⁰ frames)", apply(lambda d: make.json_clip(d / "clip.json", fps=1e-300)),
         "within 1–1000"),
    Case("clip npz of 1.1 M frames", apply(lambda d: make.npz_clip(d / "clip.npz", {"jaw": np.zeros((1_100_000, 3), np.float32)})),
         "1,100,000 frames, more than the 1,048,574"),
    Case("clip json start frame 2,000,000", apply(lambda d: make.json_clip(d / "clip.json", start_frame=2_000_000)),
         "beyond Blender's"),
    Case("clip json start frame 10²⁰", apply(lambda d: make.json_clip(d / "clip.json", start_frame=10**20)), "is too large"),
    Case("clip json start frame text", apply(lambda d: make.json_clip(d / "clip.json", start_frame="1")),
         "start_frame must be an integer"),
    Case("clip json not an object", apply(lambda d: make.text(d / "clip.json", "[1, 2, 3]")), "must be an object"),
    Case("clip json without channels", apply(lambda d: make.text(d / "clip.json", json.dumps(make.clip_metadata()))),
         "lacks a \"channels\" object"),
    Case("clip json other format", apply(lambda d: make.json_clip(d / "clip.json", format="other/1")), "not a LatticeTalk clip"),
    Case("clip json channels of different lengths", apply(lambda d: make.text(d / "clip.json", json.dumps(
        {**make.clip_metadata(), "channels": {"jaw": [[0, 0, 0]] * 3, "neck": [[0, 0, 0]] * 4}}))), "all channels must cover"),
    Case("clip json repeated expression names", apply(lambda d: make.text(d / "clip.json", json.dumps(
        {**make.clip_metadata(expression_names=["a", "a"]), "channels": {"expression": [[0, 0]] * 3}}))), "must be unique"),
    Case("clip json not UTF-8", apply(lambda d: _bytes(d / "clip.json", b"\xff\xfe{}")), "not valid JSON"),
    Case("clip json of 300 MiB", apply(lambda d: _sparse(d / "clip.json", 300 << 20)), "save long takes as .npz"),
    Case("apply --sound a text file", apply_with("--sound", lambda d: make.text(d / "line.wav")), "not a sound file"),
    Case("apply --sound a PNG", apply_with("--sound", lambda d: make.image(d / "line.wav")), "not a sound file"),
    Case("apply --sound missing", apply_with("--sound", lambda d: d / "nowhere.wav"), "sound file not found"),
    Case("apply --sound a FIFO", apply_with("--sound", lambda d: make.fifo(d / "line.wav")), "is a pipe (FIFO)"),
    Case("apply --sound a video without sound", apply_with("--sound", lambda d: make.video(d / "ref.mp4", frames=3)),
         "no sound track"),
    Case("apply --sound 3 Hz", apply_with("--sound", lambda d: make.wav_with_header_rate(d / "line.wav", 3)),
         "sample rate 3 Hz"),
    Case("apply --scene missing", apply_with("--scene", lambda d: d / "shot.blend"), "shot.blend"),
    Case("apply --scene a text file", apply_with("--scene", lambda d: make.text(d / "shot.blend")), "shot.blend"),
    Case("apply --out the clip", lambda d: ["apply", str(make.json_clip(d / "clip.json")), "--out", str(d / "clip.json")],
         "give a file name ending in .blend"),
    Case("apply --out .mp4", lambda d: ["apply", str(make.json_clip(d / "clip.json")), "--out", str(d / "scene.mp4")],
         "unknown kind of output (.mp4)"),
    Case("apply --render the sound", lambda d: ["apply", str(make.json_clip(d / "clip.json")), "--out", str(d / "s.blend"),
                                                "--sound", str(make.video(d / "ref.mp4", frames=3)), "--render",
                                                str(d / "ref.mp4")], "ref.mp4"),
]


EXPORTS = [
    Case("export livelink --out .mp4", lambda d: ["export", str(make.json_clip(d / "clip.json")), "--format", "livelink",
                                                  "--out", str(d / "take.mp4")], "give a file name ending in .csv"),
    Case("export json --out the clip", lambda d: ["export", str(make.json_clip(d / "clip.json")), "--format", "json",
                                                  "--out", str(d / "clip.json")], "is the input"),
    Case("export fbx --out .glb", lambda d: ["export", str(make.json_clip(d / "clip.json")), "--format", "fbx",
                                             "--out", str(d / "take.glb")], "give a file name ending in .fbx"),
    Case("export gltf --scene a text file", lambda d: ["export", str(make.json_clip(d / "clip.json")), "--format", "gltf",
                                                       "--scene", str(make.text(d / "shot.blend")), "--target", "Face",
                                                       "--out", str(d / "take.glb")], "Blender cannot open it"),
    Case("convert --out the clip", lambda d: ["convert", str(make.json_clip(d / "clip.json")), "--source", "default",
                                              "--target", "default", "--out", str(d / "clip.json")], "is the input"),
    Case("convert --out .csv", lambda d: ["convert", str(make.json_clip(d / "clip.json")), "--source", "default",
                                          "--target", "default", "--out", str(d / "clip.csv")], "unknown kind of output"),
]


CLI_CASES = AUDIO + OPTIONS + MODELS + OUTPUTS + CLIPS + EXPORTS


def run_cli(argv: list[str]) -> int:
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        return int(exc.code)


@pytest.fixture(scope="module", autouse=True)
def speech_pipeline_only():
    """The shipped speech model, not a test pipeline another module registered."""
    from lattice_talk.core import pipeline_registry as pipeline

    assert "speech" not in pipeline.available_pipelines()


@pytest.mark.parametrize("case", CLI_CASES, ids=[c.name for c in CLI_CASES])
def test_cli_bad_input_is_one_message_and_changes_no_file(case, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)  # a write to the working folder would show in its state
    argv = case.argv(folder)
    before = make.files_state(folder)
    code = run_cli(argv)
    err = capsys.readouterr().err
    assert code == case.code, err
    assert case.says in err, err
    assert "Traceback" not in err and "unexpected error" not in err
    assert make.files_state(folder) == before


def test_corpus_size():
    assert len(CLI_CASES) + len(OPERATOR_CASES) + len(PRESET_CASES) + len(WRITE_FAILURES) >= 100


# ------------------------------------------------------------------ presets


def preset_with(scale_literal: str) -> str:
    return '{"format": "lattice_talk.character_map/1", "channels": {"jawOpen": {"scale": ' + scale_literal + "}}}"


PRESET_CASES = [
    ("nested 100,000 deep", make.deep_json(), "nested more than"),
    ("scale with 400 digits", preset_with("9" * 400), "is too large"),
    ("scale with 400 digits and a point", preset_with("9" * 400 + ".5"), "is too large"),
    ("scale 1e999", preset_with("1e999"), "is too large"),
    ("scale NaN", preset_with("NaN"), "holds NaN"),
    ("scale 1e6", preset_with("1e6"), "jawOpen.scale: 1000000.0 is out of range (-100–100)"),
    ("scale text", preset_with('"big"'), "jawOpen.scale: 'big' is not a number"),
    ("not JSON", "{jawOpen: 1}", "not valid JSON"),
    ("other format", '{"format": "x"}', "not a LatticeTalk character map"),
    ("of 2 MiB", " " * (2 << 20) + "{}", "more than the 1 MiB"),
]


@pytest.mark.parametrize("name, body, says", PRESET_CASES, ids=[c[0] for c in PRESET_CASES])
def test_bad_presets_are_one_clear_error(tmp_path, name, body, says):
    (tmp_path / "Rig.json").write_text(body)
    before = make.files_state(tmp_path)
    with pytest.raises(CharacterMapError) as info:
        load_preset("Rig", tmp_path)
    assert says in str(info.value) and "Rig.json" in str(info.value)
    assert make.files_state(tmp_path) == before


# ------------------------------------------------------------------ disk full while saving


def write_limited(limit: int, argv: list[str]) -> int:
    """Run the CLI with files limited to ``limit`` bytes (RLIMIT_FSIZE): the kernel fails each write past it, as a
    full disk does, in Blender's .blend writer and in numpy's alike."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG) instead of killing us
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        return run_cli(argv)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


WRITE_FAILURES = [
    ("generate .blend", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", str(d / "take.blend"), "--quiet",
                                   "--force"], "take.blend", "cannot save the .blend"),
    ("generate .npz", lambda d: ["generate", str(make.wav(d / "line.wav", make.speech_like(30.0))), "--out",
                                 str(d / "take.npz"), "--quiet", "--force"], "take.npz", "cannot write clip"),
    ("generate .json", lambda d: ["generate", str(make.wav(d / "line.wav")), "--out", str(d / "take.json"), "--quiet",
                                  "--force"], "take.json", "cannot write clip"),
    ("apply .blend", lambda d: ["apply", str(make.json_clip(d / "clip.json")), "--out", str(d / "take.blend")],
     "take.blend", "cannot save the .blend"),
]


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs POSIX file-size limits")
@pytest.mark.parametrize("name, argv, output, says", WRITE_FAILURES, ids=[c[0] for c in WRITE_FAILURES])
def test_a_full_disk_while_saving_keeps_the_earlier_take(tmp_path, capsys, name, argv, output, says):
    command = argv(tmp_path)
    (tmp_path / output).write_bytes(b"the earlier take")
    before = make.files_state(tmp_path)
    code = write_limited(20_000, command)
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and says in err and output in err, err
    assert make.files_state(tmp_path) == before  # the earlier take intact, no temp file left


# ------------------------------------------------------------------ operators


@pytest.fixture(scope="module")
def head_model():
    return create("default")


@pytest.fixture
def scene_with_a_take(head_model, tmp_path):
    """LatticeTalk registered, the default head added and one take on it: what a bad input must leave alone."""
    import lattice_talk

    bpy.ops.wm.read_factory_settings(use_empty=True)
    lattice_talk.register()
    bpy.ops.lattice_talk.add_head(source="DEFAULT")
    earlier = make_clip(head_model, seconds=1.0).save(tmp_path / "earlier.npz")
    assert bpy.ops.lattice_talk.apply_clip(filepath=str(earlier), take_name="Earlier") == {"FINISHED"}
    yield
    lattice_talk.unregister()


def generate_op(audio: Callable[[Path], Path], **props):
    return lambda d: bpy.ops.lattice_talk.generate_from_audio(audio_path=str(audio(d)), **props)


def apply_op(clip: Callable[[Path], Path], **props):
    return lambda d: bpy.ops.lattice_talk.apply_clip(filepath=str(clip(d)), **props)


def scene_fps(fps: int, base: float):
    def set_and_generate(d: Path):
        bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = fps, base
        return bpy.ops.lattice_talk.generate_from_audio(audio_path=str(make.wav(d / "line.wav")))
    return set_and_generate


OPERATOR_CASES = [
    ("generate: audio a text file", generate_op(lambda d: make.text(d / "line.wav")), "cannot decode"),
    ("generate: audio a FIFO", generate_op(lambda d: make.fifo(d / "line.wav")), "is a pipe (FIFO)"),
    ("generate: audio /dev/zero", generate_op(lambda d: Path("/dev/zero")), "is a device"),
    ("generate: audio samples of 1e20", generate_op(wav_of(lambda: spiked(1e20))), "samples reach 1e+20"),
    ("generate: audio header says 3 Hz", generate_op(lambda d: make.wav_with_header_rate(d / "line.wav", 3)),
     "sample rate 3 Hz"),
    ("generate: audio NaN", generate_op(wav_of(lambda: spiked(np.nan, 4001))), "NaN or inf"),
    ("generate: start frame 2,000,000", generate_op(lambda d: make.wav(d / "line.wav"), start_frame=2_000_000),
     "start frame: 2000000 is out of range"),
    ("generate: take past Blender's last frame", generate_op(lambda d: make.wav(d / "line.wav"), start_frame=1_048_570),
     "beyond Blender's"),
    ("generate: scene at 0.001 fps base", scene_fps(120, 0.001), "frames per second: 119999.99"),
    ("generate: a video without a face", lambda d: bpy.ops.lattice_talk.generate_from_audio(
        audio_path=str(make.wav(d / "line.wav")), video_path=str(make.video(d / "ref.mp4", face=False))),
     "a face was found in 0"),
    ("apply: clip nested 100,000 deep", apply_op(lambda d: make.text(d / "clip.json", make.deep_json())), "nested more than"),
    ("apply: clip inflating to 2 M frames", apply_op(lambda d: make.npz_inflating(d / "clip.npz")), "2,000,000 frames"),
    ("apply: clip starting at frame 2,000,000", apply_op(lambda d: make.json_clip(d / "clip.json", start_frame=2_000_000)),
     "beyond Blender's"),
    ("apply: clip fps 1e-300", apply_op(lambda d: make.json_clip(d / "clip.json", fps=1e-300)), "fps must be"),
    ("apply: sound a text file", lambda d: bpy.ops.lattice_talk.apply_clip(
        filepath=str(make.json_clip(d / "clip.json")), sound_path=str(make.text(d / "line.wav"))), "not a sound file"),
    ("apply: sound a FIFO", lambda d: bpy.ops.lattice_talk.apply_clip(
        filepath=str(make.json_clip(d / "clip.json")), sound_path=str(make.fifo(d / "line.wav"))), "is a pipe (FIFO)"),
    ("apply: replacing the take with a bad clip", apply_op(lambda d: make.npz_clip(d / "clip.npz", {"jaw": np.full(
        (5, 3), np.inf, np.float32)}), take_name="Earlier"), "non-finite value"),
]


@pytest.mark.parametrize("name, call, says", OPERATOR_CASES, ids=[c[0] for c in OPERATOR_CASES])
def test_operator_bad_input_reports_and_leaves_the_scene_identical(scene_with_a_take, tmp_path, name, call, says):
    folder = tmp_path / "work"
    folder.mkdir()
    before = scene_snapshot(bpy)
    files = make.files_state(tmp_path)
    with pytest.raises(RuntimeError) as info:  # an operator's ERROR report, as scripts see it
        call(folder)
    assert says in str(info.value) and "unexpected error" not in str(info.value)
    if name.startswith("generate: scene at"):
        bpy.context.scene.render.fps, bpy.context.scene.render.fps_base = before["fps"]
    assert scene_snapshot(bpy) == before
    assert {k: v for k, v in make.files_state(tmp_path).items() if not k.startswith("work")} == \
        {k: v for k, v in files.items() if not k.startswith("work")}


# ------------------------------------------------------------------ batches: exit 1, every failure in the manifest


def test_a_batch_records_each_bad_file_and_finishes_the_good_ones(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    make.wav(inputs / "good.wav")
    make.text(inputs / "text.wav")
    make.wav(inputs / "spikes.wav", spiked(1e20), subtype="FLOAT")
    make.wav_with_header_rate(inputs / "slow.wav", 3)
    make.wav(inputs / "silent.wav", np.zeros(16000, np.float32))
    code = run_cli(["generate", str(inputs), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == EXIT_FAILED and "Traceback" not in err
    manifest = {Path(i["input"]).name: i for i in json.loads((tmp_path / "out" / "manifest.json").read_text())["items"]}
    assert manifest["good.wav"]["status"] == "done" and (tmp_path / "out" / "good.npz").is_file()
    expected = {"text.wav": "cannot decode", "spikes.wav": "samples reach 1e+20", "slow.wav": "sample rate 3 Hz",
                "silent.wav": "the file is silent"}
    for name, says in expected.items():
        assert manifest[name]["status"] == "failed" and says in manifest[name]["error"], manifest[name]
        assert name in manifest[name]["error"] and "unexpected error" not in manifest[name]["error"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["batch.log", "good.npz", "manifest.json"]


def test_one_file_bad_input_found_during_the_run_exits_2_like_a_check_before_it(tmp_path, capsys):
    code = run_cli(["generate", str(make.text(tmp_path / "line.wav")), "--out", str(tmp_path / "take.npz"), "--quiet"])
    err = capsys.readouterr().err
    assert code == EXIT_BAD_INPUT and err.startswith("error: ") and "cannot decode" in err
    assert "failed" not in err and not (tmp_path / "manifest.json").exists()


def test_clipped_audio_makes_the_take_with_a_warning(tmp_path, capsys):
    loud = np.clip(make.speech_like() * 6, -1, 1)  # about 40 % of the samples at full scale
    code = run_cli(["generate", str(make.wav(tmp_path / "loud.wav", loud)), "--out", str(tmp_path / "t.npz"), "--quiet"])
    err = capsys.readouterr().err
    assert code == EXIT_OK and (tmp_path / "t.npz").is_file()
    assert "loud.wav" in err and "% of the samples are clipped" in err
