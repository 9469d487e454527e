"""What the command groups share: exit codes, option constants, and the helpers several commands use (the head a
clip goes on, what a take reports, the options of the commands that read real held-out clips)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core import console
from ..core.paths import DATASETS_DIR

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
SCHEDULER_ENV = "LATTICE_TALK_SCHEDULER"  # the Dask scheduler a batch goes to when --scheduler is not given
EMBEDDING_HELP = ("FLAME's mediapipe_landmark_embedding.npz for a FLAME head (default: the file of that name beside "
                  "the model)")
DEVICE_CHOICES = ("cpu", "cuda")
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # the repository root: the package and the Blender extension
SPEECH_RECIPE = PACKAGE_DIR / "vendor_models" / "speech" / "recipe.json"
PROGRESS_FORMAT = "{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]"
RENDER_SUFFIXES = (".mp4", ".mkv", ".mov", ".png")  # a video with the sound, or numbered PNG frames


def _head_for(args: argparse.Namespace, clip=None):
    """``--head`` with its landmark embedding (``--embedding``, else the file beside the model). With ``clip``:
    refused now, before any work, when the clip must be converted to the head and the head has no embedding."""
    from ..core.heads import create, require_landmarks
    from ..core.validate import input_file

    if args.embedding:
        input_file(args.embedding, "landmark embedding", "give FLAME's mediapipe_landmark_embedding.npz")
    head = create(args.head, landmark_embedding=args.embedding)
    if clip is None or clip.head_id != head.head_id:
        require_landmarks(head)
    return head


def _print_take(result) -> None:
    """What the one clip → take function reports: conversion and warnings."""
    if result.conversion:
        print(f"take '{result.name}': {result.conversion}", file=console.stdout())
    for warning in result.warnings:
        print(f"warning: {warning}", file=console.stderr())
    if result.unmatched_expressions:
        print(f"warning: {len(result.unmatched_expressions)} channels have no shape key: "
              + ", ".join(result.unmatched_expressions[:8]), file=console.stderr())


def _real_clip_options(parser: argparse.ArgumentParser, split: str) -> None:
    """--manifest and --split of the commands that read real held-out clips."""
    parser.add_argument("--manifest", default=str(DATASETS_DIR / "real_speech_heldout.json"),
                        help="clip manifest (default: the held-out set in datasets/)")
    parser.add_argument("--split", choices=("dev", "test", "all"), default=split,
                        help=f"dev: the clips choices may read; test: the clips read once for published figures "
                             f"(default: {split})")
