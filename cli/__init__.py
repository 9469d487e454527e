"""``python -m lattice_talk`` — the command line. One module per command group, each with ``add_parsers`` and its
``_cmd_*`` handlers; subcommands import what they need when they run, so the CLI starts fast.

  heads.py     demo, head-info, apply
  generate.py  generate (one line: ..generate_line, which farm.py runs on Dask workers)
  clips.py     export, convert, eval
  data.py      data synth | real | voices | heldout | mix | plot | render-videos
  speech.py    speech pretrain | export-encoder | train | calibrate | recipe | eval | eval-real | eval-voices
  video.py     video track | train | eval | eval-real | eval-offset
  devtools.py  build-extension, bench
  common.py    exit codes, shared option constants and helpers
"""

from __future__ import annotations

import argparse
import sys

from ..core import console
from ..core.errors import LatticeTalkError
from ..core.paths import DATASETS_DIR
from . import clips, data, devtools, generate, heads, speech, video
from .common import (DEVICE_CHOICES, EMBEDDING_HELP, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, PROGRESS_FORMAT,
                     RENDER_SUFFIXES, SCHEDULER_ENV, SPEECH_RECIPE, _head_for, _print_take, _real_clip_options)
from .devtools import blender_extension_tool
from ..generate_line import _generate_one, _model_identity
from .generate import GenerateJobs, _generate_jobs

__all__ = [  # farm.py, bench.py and the tests import these from lattice_talk.cli
    "main", "build_parser", "COMMAND_GROUPS", "EXIT_OK", "EXIT_FAILED", "EXIT_BAD_INPUT", "SCHEDULER_ENV",
    "SPEECH_RECIPE", "DATASETS_DIR", "EMBEDDING_HELP", "DEVICE_CHOICES", "PROGRESS_FORMAT", "RENDER_SUFFIXES",
    "blender_extension_tool", "GenerateJobs", "_generate_jobs", "_generate_one", "_model_identity", "_head_for",
    "_print_take", "_real_clip_options"]

COMMAND_GROUPS = (heads, generate, clips, data, speech, video, devtools)  # in the order `--help` lists them


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lattice_talk", description="LatticeTalk: speech → editable FLAME face animation")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.run_cli = main  # the commands that run other commands (speech recipe, bench farm) call back through it
    try:
        with console.third_party_output_silenced(active=not getattr(args, "verbose", True)):  # commands that run Blender
            return args.func(args)
    except LatticeTalkError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", EXIT_BAD_INPUT)
