"""``video``: the learned video face model — tracking cache, training, evaluation on rendered and real clips, and
the audio/video offset estimate."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.errors import LatticeTalkError
from .common import EXIT_OK, _real_clip_options


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``video`` command and its subcommands."""
    video = sub.add_parser("video", help="learned video face model: tracking cache, training, evaluation")
    video_sub = video.add_subparsers(dest="video_command", required=True, metavar="VIDEO_COMMAND")
    _add_track(video_sub)
    _add_train(video_sub)
    _add_eval(video_sub)
    _add_eval_real(video_sub)
    _add_eval_offset(video_sub)


def _add_track(video_sub: argparse._SubParsersAction) -> None:
    vtrack = video_sub.add_parser("track", help="track a rendered corpus's videos once and cache the arrays")
    vtrack.add_argument("--corpus", required=True, help="folder from 'data render-videos'")
    vtrack.add_argument("--refresh", action="store_true", help="track again even where a cache exists")
    vtrack.add_argument("--quiet", action="store_true", help="no progress bar")
    vtrack.set_defaults(func=_cmd_video_track)


def _add_train(video_sub: argparse._SubParsersAction) -> None:
    vtrain = video_sub.add_parser("train", help="train on a rendered corpus (resumes from --out)")
    vtrain.add_argument("--corpus", required=True, help="folder from 'data render-videos'")
    vtrain.add_argument("--out", required=True, help="model/checkpoint folder (resumed if it holds a run)")
    vtrain.add_argument("--epochs", type=int, default=40, help="most epochs (default: 40; stops early without validation gain)")
    vtrain.add_argument("--steps-per-epoch", type=int, default=60, help="training steps per epoch (default: 60)")
    vtrain.add_argument("--batch-size", type=int, default=8, help="windows per step (default: 8)")
    vtrain.add_argument("--window", type=int, default=24, help="frames per training window (default: 24)")
    vtrain.add_argument("--video-context", action="store_true", help="add a whole-clip context vector to every frame")
    vtrain.add_argument("--no-mirror", action="store_true", help="no left-right mirror augmentation")
    vtrain.add_argument("--no-face-crops", action="store_true",
                        help="read the key points only, not the tracker's face crops (the pose's image cue)")
    vtrain.add_argument("--pose-weight", type=float, default=None,
                        help="loss weight per degree of head-pose error (default: 0.05, LossWeights.rotation_deg)")
    vtrain.add_argument("--include-heldout", action="store_true",
                        help="train on the held-out entries too (a final model whose test numbers come from another "
                             "corpus, rendered with --heldout-share 1)")
    vtrain.add_argument("--real-videos", default=None, metavar="DIR",
                        help="also learn from these videos of real people (a folder; self-supervised: the units, posed "
                             "on the head, move as the tracked face moves; mirror images agree; smooth in time)")
    vtrain.add_argument("--real-cache", default=None, metavar="DIR",
                        help="folder for the real videos' tracks (default: DIR/tracks under --real-videos)")
    vtrain.add_argument("--real-weight", type=float, default=1.0,
                        help="scale of the real videos' loss against the rendered one (default: 1.0)")
    vtrain.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: 2e-3)")
    vtrain.add_argument("--patience", type=int, default=8, help="epochs without validation gain before stopping")
    vtrain.add_argument("--init-from", default=None, metavar="MODEL_DIR",
                        help="fine-tune this model (its architecture and weights) instead of starting from scratch")
    vtrain.add_argument("--seed", type=int, default=0, help="seed of the windows and initial weights (default: 0)")
    vtrain.add_argument("--minutes", type=float, default=None, help="stop after M minutes, checkpointed (run again to resume)")
    vtrain.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    vtrain.add_argument("--quiet", action="store_true", help="no progress bar")
    vtrain.set_defaults(func=_cmd_video_train)


def _add_eval(video_sub: argparse._SubParsersAction) -> None:
    veval = video_sub.add_parser("eval", help="held-out metrics (pose, units, landmarks, 7 classes, lighting) vs the baseline")
    veval.add_argument("--model", required=True, help="model folder (video_model.safetensors + video_model.json)")
    veval.add_argument("--corpus", required=True, help="corpus folder from 'data render-videos' whose held-out entries are scored")
    veval.add_argument("--json", default=None, help="also write the results here")
    veval.add_argument("--centroids-from", default=None, metavar="CORPUS",
                       help="take the 7-class centroids from this corpus's training clips (for a corpus rendered with "
                            "--heldout-share 1; default: --corpus)")
    veval.add_argument("--no-baseline", action="store_true", help="skip the non-learned retarget baseline (slow)")
    veval.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1)")
    veval.set_defaults(func=_cmd_video_eval)


def _add_eval_real(video_sub: argparse._SubParsersAction) -> None:
    vreal = video_sub.add_parser("eval-real", help="takes made with real speakers' videos against the tracked speakers "
                                 "(pose, brows, lids, blinks), the audio-only take as the floor")
    vreal.add_argument("--real", required=True, help="folder holding the manifest's files (see datasets/README.md)")
    _real_clip_options(vreal, split="test")
    vreal.add_argument("--clips", nargs="*", default=None, help="only clips whose names start with these")
    vreal.add_argument("--model", action="append", default=None,
                       help="a video model folder to compare with the default (repeat for several)")
    vreal.add_argument("--out", default="reports/video_real/video_real.json", help="JSON report to write")
    vreal.add_argument("--cache", default=None,
                       help="folder for tracked mouths, read for the clips' own offsets (default: beside --out, tracks/)")
    vreal.set_defaults(func=_cmd_video_eval_real)


def _add_eval_offset(video_sub: argparse._SubParsersAction) -> None:
    voff = video_sub.add_parser("eval-offset", help="the audio/video offset estimate on real clips: their own sound "
                                "and known shifts (±3, ±7 frames)")
    voff.add_argument("--data", required=True, help="folder holding the manifest's files (see datasets/README.md)")
    _real_clip_options(voff, split="all")
    voff.add_argument("--with-separate-sound", action="store_true",
                      help="also clips whose sound is a separate file (their sync is not known to be exact)")
    voff.add_argument("--model", default=None, help="speech model folder (default: the shipped model)")
    voff.add_argument("--out", default="reports/av_offset/av_offset.json", help="JSON report to write")
    voff.add_argument("--cache", default=None, help="folder for tracked mouths (default: beside --out, tracks/)")
    voff.set_defaults(func=_cmd_video_eval_offset)


def _cmd_video_eval_offset(args: argparse.Namespace) -> int:
    """The A/V offset estimate on real clips with their own sound and with known shifts: right, declined or wrong."""
    from ..core.real_av.manifest import load_manifest
    from ..core.real_av.offset_eval import evaluate_offsets, format_offsets

    manifest = load_manifest(args.manifest)
    clips = [c for c in manifest if args.split == "all" or c.split == args.split]
    if not args.with_separate_sound:
        clips = [c for c in clips if c.audio is None]
    if not clips:
        raise LatticeTalkError(f"{args.manifest}: no clips with their own sound in split {args.split!r} "
                               "(add --with-separate-sound or choose another --split)")
    result = evaluate_offsets(clips, args.data, args.model, cache_dir=args.cache or Path(args.out).parent / "tracks",
                              progress=lambda stage: print(stage, file=sys.stderr), manifest=manifest)
    print(format_offsets(result["summary"]))
    print(f"wrote {_write_report(result, args.out)}")
    return EXIT_OK


def _write_report(result: dict, path: str) -> Path:
    """``result`` as indented JSON at ``path`` (its folder made if needed)."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    return out


def _cmd_video_eval_real(args: argparse.Namespace) -> int:
    """Takes made with real speakers' videos against the tracked speakers: pose, brows, lids, blinks; audio only beside."""
    from ..core.real_av.manifest import load_manifest
    from ..core.real_av.video_consistency import evaluate_video_consistency, format_consistency

    manifest = load_manifest(args.manifest)
    clips = [c for c in manifest if args.split == "all" or c.split == args.split]
    if args.clips:
        clips = [c for c in clips if any(c.name.startswith(prefix) for prefix in args.clips)]
    if not clips:
        raise LatticeTalkError(f"{args.manifest}: no clips in split {args.split!r}" +
                               (f" starting with {args.clips}" if args.clips else ""))
    models = {"default": None, **{Path(m).name: m for m in args.model or ()}}
    result = evaluate_video_consistency(clips, args.real, models, cache_dir=args.cache or Path(args.out).parent / "tracks",
                                        progress=lambda stage: print(stage, file=sys.stderr), manifest=manifest)
    print(format_consistency(result["summary"]))
    print(f"wrote {_write_report(result, args.out)}")
    return EXIT_OK


def _cmd_video_track(args: argparse.Namespace) -> int:
    """Track every video of a rendered corpus once and cache its arrays next to it (vNNNNN.track.npz)."""
    from tqdm import tqdm

    from ..core.motion.video_corpus import build_track_cache

    with tqdm(unit="video", disable=args.quiet) as bar:
        stats = build_track_cache(args.corpus, progress=lambda i, n, name: (setattr(bar, "total", n), bar.update(i - bar.n)),
                                  refresh=args.refresh)
    print(json.dumps(stats))
    return EXIT_OK


def _cmd_video_train(args: argparse.Namespace) -> int:
    """Train the learned video face model on a rendered corpus (tracks it first), resumable, early stopping."""
    import torch
    from tqdm import tqdm

    from ..core.motion.real_face_loss import RealLossWeights
    from ..core.motion.video_model import VideoModelConfig
    from ..core.motion.video_corpus import build_track_cache, track_folder
    from ..core.motion.video_train import LossWeights, train_video_model

    torch.set_num_threads(args.threads)
    weights = LossWeights() if args.pose_weight is None else LossWeights(rotation_deg=args.pose_weight)
    build_track_cache(args.corpus)
    real_tracks = None
    if args.real_videos is not None:
        cache = Path(args.real_cache) if args.real_cache else Path(args.real_videos) / "tracks"
        with tqdm(unit="video", desc="real videos", disable=args.quiet) as bar:
            real_tracks, stats = track_folder(args.real_videos, cache, progress=lambda i, n, name: (
                setattr(bar, "total", n), bar.update(i - bar.n)))
        if not real_tracks:
            raise LatticeTalkError(f"{args.real_videos}: no face found in any video (see {cache / 'track_failures.json'})")
        print(f"real videos: {len(real_tracks)} tracked ({stats['failed']} without a face)", file=sys.stderr)
    real_weights = RealLossWeights().scaled(args.real_weight)
    with tqdm(total=args.epochs, unit="epoch", disable=args.quiet) as bar:
        def progress(epoch: int, losses: dict) -> None:
            bar.update(epoch + 1 - bar.n)
            bar.set_postfix(train=f"{losses['train']:.3f}", val=f"{losses['validation']:.3f}",
                            pose=f"{losses['rotation_deg']:.2f}°", mm=f"{losses['landmark_mm']:.2f}", refresh=False)

        history = train_video_model(args.corpus, args.out, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                                    batch_size=args.batch_size, window=args.window, lr=args.lr, seed=args.seed,
                                    patience=args.patience, config=VideoModelConfig(video_context=args.video_context),
                                    mirror=not args.no_mirror, minutes=args.minutes, init_from=args.init_from,
                                    face_crops=not args.no_face_crops, weights=weights,
                                    splits=("train", "heldout") if args.include_heldout else ("train",),
                                    real_tracks=real_tracks, real_weights=real_weights, progress=progress)
    print(f"best validation loss {history['best']:.4f} at epoch {history['best_epoch']} "
          f"({history.get('stopped', 'all epochs')}); model in {args.out}")
    return EXIT_OK


def _cmd_video_eval(args: argparse.Namespace) -> int:
    """Held-out metrics of the learned model (and the non-learned baseline) on a rendered corpus."""
    import torch

    from ..core.motion.face_models import RetargetFaceModel
    from ..core.motion.video_model import load_face_model
    from ..core.motion.video_corpus import build_track_cache
    from ..core.motion.video_train import evaluate_models, format_results

    torch.set_num_threads(args.threads)
    build_track_cache(args.corpus)
    models = {"learned": load_face_model(args.model)}
    if not args.no_baseline:
        models["baseline (retarget)"] = RetargetFaceModel()
    results = evaluate_models(models, args.corpus, centroids_from=args.centroids_from)
    print(format_results(results))
    if not results["centroid_clips"]:
        print(f"no 7-class accuracy: {results['centroids_from']} has no tracked training expression clips for the "
              "class centroids (an all-held-out corpus: add --centroids-from CORPUS)")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    return EXIT_OK
