"""The compute device: the torch device the speech and video models run on, chosen at run time on every surface
(``generate --device``, ``bench speech --device``, the *Compute device* preference), with a CPU fallback that says
so in one line. The CUDA test runs only where CUDA exists (the one kind of test allowed to skip)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the compute device is a torch device")

import lattice_talk  # noqa: E402
from lattice_talk.cli import EXIT_BAD_INPUT, EXIT_OK, main  # noqa: E402
from lattice_talk.core.clip import load_clip  # noqa: E402
from lattice_talk.core.device import torch_device  # noqa: E402
from lattice_talk.core.errors import LatticeTalkError  # noqa: E402

SPEECH = Path(lattice_talk.__file__).resolve().parent / "vendor_models" / "samples" / "hello.wav"
HAS_CUDA = torch.cuda.is_available()


@pytest.fixture
def no_cuda(monkeypatch):
    """This machine as one without a usable GPU (on a CPU-only machine it already is)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_cpu_is_the_cpu_without_a_notice():
    notices = []
    assert torch_device("cpu", notices.append) == "cpu" and torch_device("CPU", notices.append) == "cpu"
    assert notices == []


def test_cuda_without_a_gpu_falls_back_to_the_cpu_with_one_notice(no_cuda):
    notices = []
    assert torch_device("cuda", notices.append) == "cpu"
    assert len(notices) == 1 and "CUDA" in notices[0] and notices[0].endswith("running on the CPU")


def test_unknown_device_is_one_clear_error():
    with pytest.raises(LatticeTalkError, match="unknown compute device 'tpu'; choose one of cpu, cuda"):
        torch_device("tpu", print)


def test_generate_device_is_used_and_recorded(no_cuda, tmp_path, capsys):
    out = tmp_path / "cpu.npz"
    assert main(["generate", str(SPEECH), "--device", "cpu", "--out", str(out), "--quiet"]) == EXIT_OK
    assert load_clip(out).provenance["device"] == "cpu" and "notice" not in capsys.readouterr().err
    fallback = tmp_path / "fallback.npz"
    assert main(["generate", str(SPEECH), "--device", "cuda", "--out", str(fallback), "--quiet"]) == EXIT_OK
    err = capsys.readouterr().err
    assert err.count("running on the CPU") == 1
    clip = load_clip(fallback)
    assert clip.provenance["device"] == "cpu"
    assert np.array_equal(clip.expression, load_clip(out).expression)  # the same take as asked for on the CPU


def test_bench_device_is_only_for_the_speech_benchmark(capsys):
    assert main(["bench", "head", "--device", "cuda"]) == EXIT_BAD_INPUT
    assert "--device is for 'bench speech'" in capsys.readouterr().err


def test_compute_device_preference_picks_the_pipelines_device(no_cuda, addon):
    """Enabled as an add-on: *Compute device* reaches the pipeline the sidebar's Generate runs."""
    import bpy

    from lattice_talk.operators.generate import chosen_pipeline

    addons = bpy.context.preferences.addons
    entry = addons.new()
    entry.module = "lattice_talk"
    try:
        reports = []
        report = lambda kind, message: reports.append((kind, message))  # noqa: E731
        assert chosen_pipeline(bpy.context, "", report).device == "cpu" and reports == []
        entry.preferences.compute_device = "CUDA"
        assert chosen_pipeline(bpy.context, "", report).device == "cpu"
        assert len(reports) == 1 and reports[0][0] == {"WARNING"} and "running on the CPU" in reports[0][1]
    finally:
        addons.remove(addons["lattice_talk"])


@pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU and a CUDA build of torch")
def test_cuda_runs_the_speech_and_video_models_on_the_gpu(tmp_path, capsys):
    from lattice_talk.core.motion.face_models import LEARNED_VIDEO_MODEL_DIR, video_face_model

    out, reference = tmp_path / "cuda.npz", tmp_path / "cpu.npz"
    assert main(["generate", str(SPEECH), "--device", "cuda", "--out", str(out), "--quiet"]) == EXIT_OK
    assert "notice" not in capsys.readouterr().err
    assert main(["generate", str(SPEECH), "--device", "cpu", "--out", str(reference), "--quiet"]) == EXIT_OK
    on_gpu, on_cpu = load_clip(out), load_clip(reference)
    assert on_gpu.provenance["device"] == "cuda"
    assert np.abs(on_gpu.expression - on_cpu.expression).max() < 0.02  # the same take, up to GPU rounding
    assert np.abs(on_gpu.jaw - on_cpu.jaw).max() < 0.01
    # The learned video model on the GPU gives the CPU's result, on a track made from the default head's own
    # points (a face speaking its ARKit units, slightly turning), so this runs where no Blender or MediaPipe is.
    track = _head_track(n_frames=40)
    video = video_face_model(LEARNED_VIDEO_MODEL_DIR, "cuda")
    assert all(p.device.type == "cuda" for p in video.net.parameters())
    units, rotation = video.predict_arrays(track)
    cpu_units, cpu_rotation = video_face_model(LEARNED_VIDEO_MODEL_DIR, "cpu").predict_arrays(track)
    assert np.abs(units - cpu_units).max() < 0.02 and np.abs(rotation - cpu_rotation).max() < 0.01


def _head_track(n_frames: int):
    from lattice_talk.core.heads import create
    from lattice_talk.core.landmark_rig import LandmarkRig
    from lattice_talk.core.motion.track_arrays import TrackArrays
    from lattice_talk.core.video.face_crop import CROP_SIZE

    rng = np.random.default_rng(0)
    head = create("default")
    units = np.clip(rng.normal(0.2, 0.2, (n_frames, head.n_expression)), 0, 1).astype(np.float32)
    pose = np.zeros((n_frames, 5, 3), np.float32)
    pose[:, 2, 0] = np.linspace(0, 0.2, n_frames)  # the jaw opens
    metric = LandmarkRig(head).points(units, pose).astype(np.float32)
    image = (0.5 + 3.0 * metric * np.array([1.0, -1.0, 1.0], np.float32)).astype(np.float32)  # a front view, 0..1
    rotation = np.zeros((n_frames, 3), np.float32)
    rotation[:, 1] = np.linspace(-0.2, 0.2, n_frames)
    return TrackArrays(source="head", fps=25.0, width=256, height=256, points=image, points_metric=metric,
                       head_rotation=rotation, flow=np.zeros((n_frames, metric.shape[1], 2), np.float32),
                       eye_closure=np.zeros((n_frames, 2), np.float32), confidence=np.ones(n_frames, np.float32),
                       face_crops=rng.integers(0, 255, (n_frames, CROP_SIZE, CROP_SIZE)).astype(np.uint8))
