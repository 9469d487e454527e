"""The learned video face model: files, loader checks, training on a tiny rendered corpus, metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lattice_talk.core.lbs import rodrigues_np, rodrigues_torch  # noqa: E402
from lattice_talk.core.motion import video_model as vm  # noqa: E402
from lattice_talk.core.motion import video_corpus as vc  # noqa: E402
from lattice_talk.core.motion import video_train as vt  # noqa: E402

TINY = vm.VideoModelConfig(mesh_channels=(4, 8), embedding=16, hidden=16, kernel=3, dilations=(1, 2), dropout=0.0)
TINY_CROPS = vm.VideoModelConfig(**{**TINY.__dict__, "face_crop": vm.CROP_SIZE})


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """3 clips × 8 frames rendered by the repo's renderer (all 'train', no relit), tracked and cached."""
    pytest.importorskip("bpy", reason="rendering needs the bpy wheel")
    pytest.importorskip("mediapipe", reason="the 'video' extra (mediapipe==0.10.21)")
    pytest.importorskip("cv2", reason="the 'video' extra")
    from lattice_talk.scene.video_render import render_video_corpus

    folder = tmp_path_factory.mktemp("video_corpus")
    render_video_corpus(folder, count=3, seed=3, n_frames=8, heldout_share=0.0, relit_share=0.0)
    stats = vc.build_track_cache(folder)
    assert stats["tracked"] + stats["cached"] >= 2, stats
    return folder


def _names():
    from lattice_talk.core.heads import create

    return create("default").expression_names


def _tiny_model(seed: int = 0, config: vm.VideoModelConfig = TINY) -> vm.VideoFaceNet:
    torch.manual_seed(seed)
    net = vm.VideoFaceNet(config)
    with torch.no_grad():  # non-zero pose head and fp16-exact weights: the file round trip must be bit-exact
        net.rotation.weight.normal_(0, 0.01)
        net.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in net.state_dict().items()})
    return net.eval()


@pytest.mark.parametrize("config", [TINY, TINY_CROPS], ids=["points", "points+crops"])
def test_saved_model_reloads_with_identical_outputs(tmp_path, corpus, config):
    track = vc.load_video_examples(corpus)[0].track
    net = _tiny_model(config=config)
    vm.save_face_model(net, tmp_path, _names())
    assert (tmp_path / "video_model.safetensors").stat().st_size < 5_000_000
    original = vm.LearnedFaceModel(net, json.loads((tmp_path / "video_model.json").read_text()))
    loaded = vm.load_face_model(tmp_path)
    a, b = original.predict(track), loaded.predict(track)
    assert a.units.shape == (track.n_frames, 52) and a.head_rotation.shape == (track.n_frames, 3)
    np.testing.assert_array_equal(a.units, b.units)
    np.testing.assert_array_equal(a.head_rotation, b.head_rotation)
    assert 0.0 <= a.units.min() and a.units.max() <= 1.0
    # the pipeline's hook picks the learned model when its weights are installed
    from lattice_talk.core.motion.face_models import video_face_model

    picked = video_face_model(tmp_path)
    assert isinstance(picked, vm.LearnedFaceModel)
    np.testing.assert_array_equal(picked.predict(track).units, a.units)


@pytest.mark.parametrize("net_config", [TINY, TINY_CROPS], ids=["points", "points+crops"])
def test_a_mirrored_video_gives_the_mirrored_face_and_pose(corpus, net_config):
    from lattice_talk.core.motion.track_arrays import mirror_rotation, mirror_track, unit_mirror

    track = vc.load_video_examples(corpus)[0].track
    swap = unit_mirror(_names())
    config = {"unit_names": list(_names())}
    for mirror_average in (True, False):  # one pass alone is not mirror-symmetric
        model = vm.LearnedFaceModel(_tiny_model(config=net_config), config, mirror_average=mirror_average)
        face, mirrored = model.predict(track), model.predict(mirror_track(track))
        unit_gap = np.abs(mirrored.units - face.units[:, swap]).max()
        pose_gap = vt.pose_error_deg(mirrored.head_rotation, mirror_rotation(face.head_rotation)).max()
        if mirror_average:
            assert unit_gap < 1e-6 and pose_gap < 1e-3, (unit_gap, pose_gap)
        else:
            assert unit_gap > 1e-3 and pose_gap > 0.01, (unit_gap, pose_gap)


def test_pose_smoothing_from_the_model_file_smooths_the_mirror_averaged_pose(corpus):
    from lattice_talk.core.motion.track_arrays import mirror_rotation, mirror_track
    from lattice_talk.core.video.head_pose import smooth

    from lattice_talk.core.motion.track_arrays import TrackArrays

    clip = vc.load_video_examples(corpus)[0].track
    track = TrackArrays(**{**clip.__dict__, "fps": 10.0})  # 8 frames: a 0.3 s window needs the slower rate
    net = _tiny_model(seed=2)
    with torch.no_grad():
        net.rotation.weight.normal_(0, 0.3)  # a jittery pose correction
    raw = vm.LearnedFaceModel(net, {"unit_names": list(_names())}).predict_arrays(track)[1]
    smoothed_model = vm.LearnedFaceModel(net, {"unit_names": list(_names()), "pose_smoothing_s": 0.3})
    smoothed = smoothed_model.predict_arrays(track)[1]
    np.testing.assert_allclose(smoothed, smooth(raw, track.fps, 0.3), atol=1e-6)
    steps = [vt.pose_error_deg(r[1:], r[:-1]).mean() for r in (raw, smoothed)]
    assert steps[1] < 0.8 * steps[0], steps
    mirrored = smoothed_model.predict_arrays(mirror_track(track))[1]  # smoothing keeps the mirror symmetry
    assert vt.pose_error_deg(mirrored, mirror_rotation(smoothed)).max() < 1e-3


def test_untrained_pose_is_the_trackers(corpus):
    track = vc.load_video_examples(corpus)[0].track
    net = vm.VideoFaceNet(TINY).eval()  # correction layer starts at zero
    face = vm.LearnedFaceModel(net, {"unit_names": list(_names())}).predict(track)
    assert vt.pose_error_deg(face.head_rotation, track.head_rotation).max() < 1e-3


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["topology"].update(digest="0" * 16), "topology"),
    (lambda c: c["topology"].update(spiral_length=12), "topology"),
    (lambda c: c.update(features="video_features/0"), "features"),
    (lambda c: c["model"].update(hidden=32), "do not match"),
    (lambda c: c["model"].update(face_crop=64), "face crops"),
])
def test_loader_refuses_a_mismatched_file(tmp_path, edit, message):
    vm.save_face_model(_tiny_model(), tmp_path, _names())
    config = json.loads((tmp_path / "video_model.json").read_text())
    edit(config)
    (tmp_path / "video_model.json").write_text(json.dumps(config))
    with pytest.raises(vm.VideoModelError, match=message):
        vm.load_face_model(tmp_path)


def test_adding_face_crops_keeps_the_models_predictions_until_trained(corpus):
    """Fine-tuning a key-points model onto crops starts from exactly its predictions (the crop features enter
    through zero weights); once those weights move, the crops change the output."""
    track = vc.load_video_examples(corpus)[0].track
    assert track.face_crops is not None and track.face_crops.shape[1:] == (vm.CROP_SIZE, vm.CROP_SIZE)
    net = _tiny_model(seed=5)
    grown = vm.with_face_crops(net).eval()
    config = {"unit_names": list(_names())}
    before = vm.LearnedFaceModel(net, config).predict(track)
    after = vm.LearnedFaceModel(grown, config).predict(track)
    np.testing.assert_allclose(after.units, before.units, atol=1e-6)
    np.testing.assert_allclose(after.head_rotation, before.head_rotation, atol=1e-6)
    with torch.no_grad():
        grown.inp.weight[:, -vm.CROP_FEATURES:].normal_(0, 0.5)
    model = vm.LearnedFaceModel(grown, config)
    moved = model.predict(track)
    assert np.abs(moved.units - before.units).max() > 1e-3
    from lattice_talk.core.motion.track_arrays import TrackArrays

    shifted = TrackArrays(**{**track.__dict__, "face_crops": np.roll(track.face_crops, 8, axis=-1)})
    assert np.abs(model.predict(shifted).units - moved.units).max() > 1e-3  # the pixels matter…
    without = TrackArrays(**{**track.__dict__, "face_crops": None})
    with pytest.raises(vm.VideoModelError, match="face crops.*track the video again"):
        model.predict(without)  # …and a track without them is refused, not read as blank


def test_loader_explains_a_missing_model(tmp_path):
    with pytest.raises(vm.VideoModelError, match="video train"):
        vm.load_face_model(tmp_path)


def test_a_track_cache_from_before_the_mirror_pass_is_re_tracked_not_read(tmp_path, corpus):
    cache = next(corpus.glob("*" + vc.TRACK_SUFFIX))
    with np.load(cache, allow_pickle=False) as data:
        arrays = dict(data)
    meta = json.loads(str(arrays["meta"]))
    video = corpus / meta["source"]
    assert vc._cache_is_fresh(cache, video)
    old = tmp_path / cache.name
    np.savez(old, **{**arrays, "meta": np.array(json.dumps({**meta, "format": "lattice_talk.video_track_cache/1"}))})
    assert not vc._cache_is_fresh(old, video)  # build_track_cache tracks the video again
    with pytest.raises(vt.LatticeTalkError, match=r"older LatticeTalk.*video track --corpus"):
        vc.load_track(old)


def test_training_runs_checkpoints_and_resumes(tmp_path, corpus):
    torch.set_num_threads(1)
    out = tmp_path / "run"
    seen = []
    first = vt.train_video_model(corpus, out, epochs=3, steps_per_epoch=2, batch_size=2, window=8, config=TINY,
                                 minutes=0.0, progress=lambda epoch, losses: seen.append(epoch))
    assert seen == [0] and "time limit" in first["stopped"]  # stopped after one epoch, checkpointed
    for name in ("video_model.safetensors", "video_model.json", "last.safetensors", "optimizer.pt", "train_state.json"):
        assert (out / name).is_file(), name
    second = vt.train_video_model(corpus, out, epochs=3, steps_per_epoch=2, batch_size=2, window=8, config=TINY,
                                  progress=lambda epoch, losses: seen.append(epoch))
    assert seen == [0, 1, 2] and len(second["validation"]) == 3  # resumed at epoch 1, history kept
    assert all(np.isfinite(second["validation"]))
    model = vm.load_face_model(out)
    config = json.loads((out / "video_model.json").read_text())
    assert config["training"]["train_videos"] >= 1 and config["epoch"] == second["best_epoch"]
    face = model.predict(vc.load_video_examples(corpus)[0].track)
    assert np.isfinite(face.units).all() and np.isfinite(face.head_rotation).all()
    assert model.net.config.face_crop == vm.CROP_SIZE and TINY.face_crop == 0  # crops by default; TINY untouched
    # the pose smoothing is picked on the validation videos, written into the file, and used
    errors = config["pose_smoothing_validation_deg"]
    assert set(errors) == {f"{w:g}" for w in vt.POSE_SMOOTHING_CHOICES}
    assert config["pose_smoothing_s"] == second["pose_smoothing_s"] and errors[f"{config['pose_smoothing_s']:g}"] == min(errors.values())
    assert model.pose_smoothing == config["pose_smoothing_s"]


def test_training_without_face_crops_makes_a_key_points_model(tmp_path, corpus):
    torch.set_num_threads(1)
    vt.train_video_model(corpus, tmp_path, epochs=1, steps_per_epoch=1, batch_size=2, window=8, config=TINY,
                         face_crops=False)
    model = vm.load_face_model(tmp_path)
    assert model.net.crops is None and "face_crop" not in json.loads((tmp_path / "video_model.json").read_text())


def test_fine_tuning_starts_from_the_given_model(tmp_path, corpus):
    torch.set_num_threads(1)
    start = tmp_path / "start"
    vm.save_face_model(_tiny_model(seed=4), start, _names())
    track = vc.load_video_examples(corpus)[0].track
    before = vm.load_face_model(start).predict(track)
    tuned = tmp_path / "tuned"
    history = vt.train_video_model(corpus, tuned, epochs=1, steps_per_epoch=1, batch_size=2, window=8, lr=1e-12,
                                   init_from=start)
    # a vanishing learning rate: the same net comes back (its pose smoothing, picked after training, left out)
    after = vm.LearnedFaceModel(*vm.load_net(tuned), pose_smoothing=0.0).predict(track)
    np.testing.assert_allclose(after.units, before.units, atol=2e-3)
    np.testing.assert_allclose(after.head_rotation, before.head_rotation, atol=2e-3)
    assert json.loads((tuned / "video_model.json").read_text())["training"]["init_from"] == str(start)
    assert len(history["validation"]) == 1
    # a model for other units is refused before any training
    config = json.loads((start / "video_model.json").read_text())
    config["unit_names"] = [f"u{i}" for i in range(len(config["unit_names"]))]
    (start / "video_model.json").write_text(json.dumps(config))
    with pytest.raises(vt.LatticeTalkError, match="units differ"):
        vt.train_video_model(corpus, tmp_path / "other", epochs=1, steps_per_epoch=1, init_from=start)


def test_training_mirror_images_read_the_mirrored_tracks_crops_without_a_copy(corpus):
    from lattice_talk.core.motion.track_arrays import mirror_track

    ex = vc.load_video_examples(corpus)[0]
    original, mirrored = vt._arrays([ex], mirror=True)
    expected = mirror_track(ex.track)
    np.testing.assert_array_equal(mirrored.crops, expected.face_crops)
    assert np.shares_memory(mirrored.crops, original.crops)  # a view of the crops the original holds
    np.testing.assert_array_equal(mirrored.vertex, vm.track_features(expected)[0])


def test_pose_error_on_constructed_rotations():
    rng = np.random.default_rng(0)
    truth = rng.normal(0, 0.3, (50, 3))
    assert np.abs(vt.pose_error_deg(truth, truth)).max() < 1e-6
    axis = rng.normal(size=3)
    offset = rodrigues_np(axis / np.linalg.norm(axis) * np.radians(2.0))
    from lattice_talk.core.rotations import matrix_to_rotvec

    shifted = matrix_to_rotvec(rodrigues_np(truth) @ offset)  # R_pred = R_gt · Δ(2°)
    np.testing.assert_allclose(vt.pose_error_deg(shifted, truth), 2.0, atol=1e-6)
    shifted_left = matrix_to_rotvec(offset @ rodrigues_np(truth))
    np.testing.assert_allclose(vt.pose_error_deg(shifted_left, truth), 2.0, atol=1e-6)


def test_torch_rotation_angle_matches_numpy():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0, 0.5, (20, 3)), rng.normal(0, 0.5, (20, 3))
    angle = vm.rotation_angle(rodrigues_torch(torch.tensor(a)), rodrigues_torch(torch.tensor(b)))
    np.testing.assert_allclose(np.degrees(angle.numpy()), vt.pose_error_deg(a, b), atol=1e-5)


def test_nearest_centroid_separates_separable_classes():
    rng = np.random.default_rng(2)
    classes = ["neutral", "happy", "sad", "surprise", "fear", "disgust", "anger"]
    centres = np.eye(7) * 3.0
    train = np.concatenate([centres[i] + rng.normal(0, 0.2, (5, 7)) for i in range(7)])
    labels = [c for c in classes for _ in range(5)]
    test = np.concatenate([centres[i] + rng.normal(0, 0.2, (3, 7)) for i in range(7)])
    truth = [c for c in classes for _ in range(3)]
    assert vt.nearest_centroid(train, labels, test) == truth


def _relabelled(corpus, folder, split_of):
    """A copy of the corpus (links to its files) whose manifest gives entry i the split ``split_of(i)``."""
    from lattice_talk.core.data.video_clips import MANIFEST

    manifest = json.loads((corpus / MANIFEST).read_text())
    for i, entry in enumerate(manifest["clips"]):
        entry["split"] = split_of(i)
    folder.mkdir()
    for item in corpus.iterdir():
        if item.name != MANIFEST:
            (folder / item.name).symlink_to(item)
    (folder / MANIFEST).write_text(json.dumps(manifest))
    return folder


def test_evaluation_reports_every_metric(tmp_path, corpus):
    """The evaluation's bookkeeping on a corpus: held-out videos scored, table printed."""
    held = _relabelled(corpus, tmp_path / "corpus", lambda i: "heldout" if i == 0 else "train")  # rest: centroids
    model = vm.LearnedFaceModel(_tiny_model(), {"unit_names": list(_names())})
    results = vt.evaluate_models({"tiny": model}, held)
    row = results["models"]["tiny"]
    assert row["videos"] == 1 and row["frames"] >= 2 and np.isfinite(row["pose_error_deg_mean"])
    assert row["landmark_rmse_mm"] > 0
    assert "head pose error, mean" in vt.format_results(results)


def test_an_all_heldout_corpus_takes_its_class_centroids_from_another(tmp_path, corpus):
    """A test corpus rendered with heldout_share=1 has no training clips: the 7-class centroids come from the
    training corpus's expression clips, or the accuracy is left out."""
    manifest = json.loads((corpus / "manifest.json").read_text())
    expression = [i for i, e in enumerate(manifest["clips"]) if e["kind"] == "expression" and e.get("label")]
    assert expression, "the tiny corpus needs an expression clip"
    test = _relabelled(corpus, tmp_path / "test", lambda i: "heldout")
    model = vm.LearnedFaceModel(_tiny_model(), {"unit_names": list(_names())})
    without = vt.evaluate_models({"tiny": model}, test)
    alone = without["models"]["tiny"]
    assert without["centroid_clips"] == 0 and "expression_accuracy" not in alone
    assert alone["videos"] == len(manifest["clips"])
    results = vt.evaluate_models({"tiny": model}, test, centroids_from=corpus)
    row = results["models"]["tiny"]
    assert row["expression_train_clips"] == len(expression) and row["expression_clips"] == len(expression)
    assert row["pose_error_deg_mean"] == alone["pose_error_deg_mean"]
    assert results["centroids_from"] == str(corpus.resolve())
    # the same from the command line
    from lattice_talk.cli import main

    vm.save_face_model(_tiny_model(), tmp_path / "model", _names())
    assert main(["video", "eval", "--model", str(tmp_path / "model"), "--corpus", str(test), "--centroids-from",
                 str(corpus), "--no-baseline", "--json", str(tmp_path / "eval.json")]) == 0
    assert json.loads((tmp_path / "eval.json").read_text())["models"]["learned"]["expression_train_clips"] == len(expression)


def test_training_on_the_heldout_entries_only_when_asked(tmp_path, corpus):
    torch.set_num_threads(1)
    test = _relabelled(corpus, tmp_path / "test", lambda i: "heldout")
    with pytest.raises(vt.LatticeTalkError, match="no tracked videos in train"):
        vt.train_video_model(test, tmp_path / "none", epochs=1, steps_per_epoch=1, config=TINY)
    from lattice_talk.cli import main

    assert main(["video", "train", "--corpus", str(test), "--out", str(tmp_path / "all"), "--epochs", "1",
                 "--steps-per-epoch", "1", "--batch-size", "2", "--window", "8", "--include-heldout", "--quiet"]) == 0
    facts = json.loads((tmp_path / "all" / "video_model.json").read_text())["training"]
    assert facts["splits"] == ["train", "heldout"]
    assert facts["train_videos"] + facts["validation_videos"] >= len(vc.load_video_examples(test, ("heldout",)))


# ------------------------------------------------------------------------------------------ real videos


class _FixedUnits(torch.nn.Module):
    """A stand-in net whose units are given: the loss alone is under test."""

    def __init__(self, units: np.ndarray, correction: np.ndarray | None = None):
        super().__init__()
        self.units = torch.from_numpy(np.asarray(units, np.float32))
        self.correction = (torch.zeros(*self.units.shape[:2], 3) if correction is None
                           else torch.from_numpy(np.asarray(correction, np.float32)))

    def forward(self, vertex, frame, crops=None):
        return self.units, self.correction


def _speaker_track(units: np.ndarray, landmarks, scale: float, offset: np.ndarray):
    """A tracked "real" face whose points are the default head's posed with ``units``, another size and place
    (another identity's proportions aside: what the motion loss must not see)."""
    from lattice_talk.core.motion.track_arrays import TrackArrays

    t = len(units)
    metric = np.repeat(vm.reference_points()[None], t, axis=0).astype(np.float64)
    posed = (landmarks.rest + np.einsum("tu,upc->tpc", units, landmarks.basis)) / 1000.0  # metres
    metric[:, landmarks.mediapipe_index] = posed
    metric = metric * scale + offset
    image = 0.5 + metric * np.array([4.0, -4.0, 1.0])
    return TrackArrays("speaker.mp4", 25.0, 640, 480, image.astype(np.float32), metric.astype(np.float32),
                       np.zeros((t, 3), np.float32), np.zeros((t, 478, 2), np.float32), np.zeros((t, 2), np.float32),
                       np.ones(t, np.float32))


def test_the_real_face_loss_compares_motion_not_identity_and_checks_mirror_images_and_smoothness():
    from lattice_talk.core.motion import real_face_loss as rl
    from lattice_talk.core.motion.track_arrays import unit_mirror

    names = tuple(_names())
    landmarks = vt.landmark_basis(names)
    swap = unit_mirror(names)
    basis = torch.from_numpy(landmarks.basis)
    t = 12
    rng = np.random.default_rng(0)
    jaw, smile = names.index("jawOpen"), names.index("mouthSmileLeft")
    units = np.zeros((t, len(names)))
    units[:, jaw] = np.linspace(0.1, 0.7, t)  # a mouth opening over the window, and a smile on one side
    units[:, smile] = np.linspace(0.6, 0.2, t)
    track = _speaker_track(units, landmarks, scale=1.3, offset=np.array([0.02, -0.01, 0.3]))
    pairs = rl.real_pairs([track], landmarks.mediapipe_index, landmarks.eye_corner_distance_mm)
    batch = rl.real_batch(pairs, rng, 1, t)
    assert batch["vertex"].shape[:2] == (2, t) and batch["points_mm"].shape == (2, t, len(landmarks.rest), 3)

    def loss(predicted: np.ndarray, mirrored: np.ndarray, correction: np.ndarray | None = None):
        return rl.real_face_loss(_FixedUnits(np.stack([predicted, mirrored]), correction), batch, basis, swap)[1]

    exact = loss(units, units[:, swap])
    # exact on the video itself (< 0.001 mm); its mirror image is off by the head's own left-right asymmetry (~0.2 mm)
    assert exact["real_motion_mm"] < 0.3 and exact["real_mirror_units"] < 1e-3 and exact["real_smooth_units"] < 1e-3
    assert exact["real_pose_motion_deg"] < 0.01
    # the pose correction: a constant offset on the tracker's pose is free, one that changes within the window costs
    steady = np.tile(np.radians([5.0, -3.0, 1.0]), (2, t, 1))
    assert loss(units, units[:, swap], steady)["real_pose_motion_deg"] < 0.01
    turning = steady.copy()
    turning[:, :, 1] += np.radians(np.linspace(-2.0, 2.0, t))  # a yaw the tracker's fit did not see
    assert loss(units, units[:, swap], turning)["real_pose_motion_deg"] == pytest.approx(1.25, abs=0.1)
    # the same motion from another resting face (all units shifted by a constant): no motion error
    assert loss(units + 0.2, (units + 0.2)[:, swap])["real_motion_mm"] == pytest.approx(exact["real_motion_mm"], abs=1e-3)
    # a still face, the wrong side's smile, a jittery jaw, a mirror image read unmirrored: each is seen
    assert loss(np.zeros_like(units), np.zeros_like(units))["real_motion_mm"] > 1.0
    wrong_side = units.copy()
    wrong_side[:, [smile, swap[smile]]] = wrong_side[:, [swap[smile], smile]]
    assert loss(wrong_side, wrong_side[:, swap])["real_motion_mm"] > exact["real_motion_mm"] + 0.3
    jitter = units.copy()
    jitter[::2, jaw] += 0.1
    assert loss(jitter, jitter[:, swap])["real_smooth_units"] > 10 * exact["real_smooth_units"] + 0.003
    # ... but a blink (both lids shut for two frames) costs little: an absolute, not a squared, second difference
    # (0.015 here; the RMSE of the same differences is 0.12, which had the trained model stop blinking)
    blink = units.copy()
    blink[5:7, [names.index("eyeBlinkLeft"), names.index("eyeBlinkRight")]] = 1.0
    assert loss(blink, blink[:, swap])["real_smooth_units"] < exact["real_smooth_units"] + 0.02
    assert loss(units, units)["real_mirror_units"] > 0.05
    # the upper face's points (73 of 468) carry most of the motion term: a brow raise the prediction misses counts more,
    # a missed jaw opening less; the weights sum to 1, so an exact prediction stays exact
    balance = rl.upper_face_balance(landmarks.mediapipe_index)
    assert balance.sum() == pytest.approx(1.0) and balance.max() > 4 * balance.min()

    def motion_mm(predicted: np.ndarray, point_weights=None) -> float:
        return rl.real_face_loss(_FixedUnits(np.stack([predicted, predicted[:, swap]])), batch, basis, swap,
                                 point_weights=point_weights)[1]["real_motion_mm"]

    brow = names.index("browInnerUp")
    raised = units.copy()
    raised[:, brow] = np.linspace(0.0, 0.8, t)  # the real face: jaw, smile and a brow raise
    brow_track = _speaker_track(raised, landmarks, scale=1.3, offset=np.array([0.02, -0.01, 0.3]))
    batch = rl.real_batch(rl.real_pairs([brow_track], landmarks.mediapipe_index, landmarks.eye_corner_distance_mm),
                          rng, 1, t)
    weights = torch.from_numpy(balance)
    assert motion_mm(units, weights) > 1.2 * motion_mm(units)  # the brow raise missed
    no_jaw = raised.copy()
    no_jaw[:, jaw] = 0.1
    assert motion_mm(no_jaw, weights) < motion_mm(no_jaw)  # the jaw missed
    assert motion_mm(raised, weights) < 0.3
    # frames the tracker lost are not read: garbage there changes nothing
    lost = track.confidence.copy()
    lost[3:6] = 0.0
    track.confidence = lost
    garbled = track.points_metric.copy()
    garbled[3:6] += 0.05
    track.points_metric = garbled
    pairs = rl.real_pairs([track], landmarks.mediapipe_index, landmarks.eye_corner_distance_mm)
    batch = rl.real_batch(pairs, rng, 1, t)
    assert loss(units, units[:, swap])["real_motion_mm"] < 0.3


def test_training_with_real_videos_adds_their_loss_and_records_them(tmp_path, corpus):
    """The corpus's own videos stand in for real people: tracked from a folder (cached, a video without a face
    listed, not fatal), trained on with the self-supervised loss, recorded in the model file."""
    import shutil

    import cv2

    from lattice_talk.cli import main

    torch.set_num_threads(1)
    people = tmp_path / "people"
    people.mkdir()
    for video in sorted(corpus.glob("v*.mp4"))[:2]:
        shutil.copy(video, people / video.name)
    (people / "notes.txt").write_text("not a video")
    writer = cv2.VideoWriter(str(people / "wall.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25, (160, 120))
    for _ in range(8):
        writer.write(np.full((120, 160, 3), 90, np.uint8))
    writer.release()
    tracks, stats = vc.track_folder(people, tmp_path / "cache")
    assert len(tracks) == 2 and stats["tracked"] == 2 and stats["failed"] == 1
    assert "wall" in json.loads((tmp_path / "cache" / "track_failures.json").read_text())
    assert vc.track_folder(people, tmp_path / "cache")[1]["cached"] == 2  # once tracked, read back
    with pytest.raises(vt.LatticeTalkError, match="no videos"):
        vc.track_folder(tmp_path / "cache", tmp_path / "other")
    history = vt.train_video_model(corpus, tmp_path / "run", epochs=1, steps_per_epoch=2, batch_size=2, window=8,
                                   config=TINY, real_tracks=tracks)
    parts = history["validation_parts"][0]
    assert {"real_motion_mm", "real_mirror_units", "real_smooth_units", "real_pose_motion_deg"} <= set(parts)
    assert all(np.isfinite(v) for v in parts.values())
    assert history["validation"][0] > parts["units_rmse"] + 0.1 * parts["real_motion_mm"]  # both losses in it
    facts = json.loads((tmp_path / "run" / "video_model.json").read_text())["training"]
    assert len(facts["real_videos"]) == 2 and facts["real_train_frames"] > 0
    # the command line: --real-videos tracks the folder into --real-cache (here: already there) and trains
    assert main(["video", "train", "--corpus", str(corpus), "--out", str(tmp_path / "cli"), "--epochs", "1",
                 "--steps-per-epoch", "1", "--batch-size", "2", "--window", "8", "--real-videos", str(people),
                 "--real-cache", str(tmp_path / "cache"), "--real-weight", "0.5", "--quiet"]) == 0
    facts = json.loads((tmp_path / "cli" / "video_model.json").read_text())["training"]
    assert facts["real_loss_weights"]["motion_mm"] == pytest.approx(0.05)
