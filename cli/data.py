"""``data``: training corpora (synthetic speech, real talking faces, real read speech, mixes, rendered videos) and
plots of the articulation."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ..core.errors import LatticeTalkError
from ..core.paths import DATASETS_DIR
from .common import EXIT_OK, _real_clip_options


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``data`` command and its subcommands."""
    data = sub.add_parser("data", help="synthetic training data: corpus generation and plots")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    _add_synth(data_sub)
    _add_real(data_sub)
    _add_voices(data_sub)
    _add_heldout(data_sub)
    _add_mix(data_sub)
    _add_plot(data_sub)
    _add_render_videos(data_sub)


def _add_synth(data_sub: argparse._SubParsersAction) -> None:
    synth = data_sub.add_parser("synth", help="speak sentences with many voices and write speech + motion shards")
    synth.add_argument("--hours", type=float, required=True, help="hours of speech to synthesize")
    synth.add_argument("--out", required=True, help="corpus folder (created)")
    synth.add_argument("--seed", type=int, default=0, help="seed of sentences, voices and rates (default: 0)")
    synth.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1), help="parallel synthesis processes (default: every CPU)")
    synth.add_argument("--languages", nargs="+", default=["en"], help="espeak-ng language codes (default: en)")
    synth.add_argument("--recombine", type=float, default=0.5,
                       help="share of training utterances that speak training words in new orders (0 = sentences only)")
    synth.add_argument("--skip", type=int, default=0,
                       help="start this many utterances into the seed's stream (extend a corpus: its utterance total)")
    synth.add_argument("--quiet", action="store_true", help="no progress bar")
    synth.set_defaults(func=_cmd_data_synth)


def _add_real(data_sub: argparse._SubParsersAction) -> None:
    real_data = data_sub.add_parser("real", help="one speaker's real talking-face videos + word alignments → training "
                                    "shards (targets from the tracked face; reads a local folder, downloads nothing)")
    real_data.add_argument("--videos", required=True, help="folder of one speaker's videos with sound (e.g. GRID s1 .mpg)")
    real_data.add_argument("--alignments", required=True, help="folder of GRID-style NAME.align word timings")
    real_data.add_argument("--speaker", required=True, help="speaker id (held-out manifests must not contain it)")
    real_data.add_argument("--out", required=True, help="corpus folder to write (shards + corpus.json)")
    real_data.add_argument("--cache", default=None, help="folder for face tracks (default: OUT/tracks)")
    real_data.add_argument("--heldout-share", type=float, default=0.05, help="videos kept for early stopping (default 0.05)")
    real_data.add_argument("--augmented-copies", type=int, default=0,
                           help="also write each training sentence N more times as other rooms and microphones "
                                "would record it (reverb, band limits, noise, gain; default 0)")
    real_data.add_argument("--limit", type=int, default=None, help="only the first N videos (smoke tests)")
    real_data.set_defaults(func=_cmd_data_real)


def _add_voices(data_sub: argparse._SubParsersAction) -> None:
    voices = data_sub.add_parser("voices", help="real read speech of many speakers + its text → training shards (phones "
                                 "by forced alignment, motion from a teacher model; reads a local folder, downloads nothing)")
    voices.add_argument("--lines", default=str(DATASETS_DIR / "training_voices.tsv"),
                        help="tab-separated table: audio<TAB>text[<TAB>speaker[<TAB>sha256<TAB>source ...]] per line, "
                        "'#' lines are comments (speaker: the audio's folder name when left out; a sha256 is checked "
                        "before anything is written; default: datasets/training_voices.tsv, the shipped model's "
                        "training voices)")
    voices.add_argument("--grid", default=None, metavar="DIR",
                        help="instead of --lines: a GRID speaker's folder, each NAME.mpg with its NAME.align beside it "
                        "(the words of the alignment are the text; the speaker: the folder's name, grid_ before it)")
    voices.add_argument("--root", default=None, help="folder the audio paths are relative to (default: the table's "
                        "folder; for datasets/training_voices.tsv: the folder of cloned OWNER+NAME repositories)")
    voices.add_argument("--teacher", default=None, help="speech model whose raw motion becomes the targets "
                        "(default: the shipped model)")
    voices.add_argument("--tag", required=True, help="name part of the shards (e.g. the source: arctic, librispeech)")
    voices.add_argument("--out", required=True, help="corpus folder to write (shards + corpus.json)")
    voices.add_argument("--heldout-share", type=float, default=0.05, help="lines kept for early stopping (default 0.05)")
    voices.add_argument("--augmented-copies", type=int, default=0,
                        help="also write each training line N more times as other rooms and microphones would record it")
    voices.add_argument("--limit", type=int, default=None, help="only the first N lines (smoke tests)")
    voices.set_defaults(func=_cmd_data_voices)


def _add_heldout(data_sub: argparse._SubParsersAction) -> None:
    heldout = data_sub.add_parser("heldout", help="assemble the held-out real clips' folder from local clones of their "
                                  "sources, by sha256 (nothing is downloaded)")
    heldout.add_argument("--sources", nargs="+", required=True,
                         help="clones of the repositories the manifest names (git history is read too), or folders")
    heldout.add_argument("--out", required=True, help="the folder to fill (what `speech eval-real --data` reads)")
    _real_clip_options(heldout, split="all")
    heldout.set_defaults(func=_cmd_data_heldout)


def _add_mix(data_sub: argparse._SubParsersAction) -> None:
    mix = data_sub.add_parser("mix", help="several corpora → one training folder (links, nothing copied)")
    mix.add_argument("--corpus", nargs="*", default=[], metavar="DIR[*N]",
                     help="corpus folders; DIR*N links its training shards N times (default 1); their held-out shards "
                     "join the early-stopping split")
    mix.add_argument("--train-only", nargs="*", default=[], metavar="DIR[*N]",
                     help="corpora whose training shards only are linked (e.g. one whose held-out split is a test set)")
    mix.add_argument("--heldout-only", nargs="*", default=[], metavar="DIR",
                     help="corpora whose held-out shards only join the early-stopping split")
    mix.add_argument("--out", required=True, help="folder to write (new, or an earlier mix, which is replaced)")
    mix.set_defaults(func=_cmd_data_mix)


def _add_plot(data_sub: argparse._SubParsersAction) -> None:
    plot = data_sub.add_parser("plot", help="draw the mouth targets and one sentence's curves")
    plot.add_argument("--out", default="out/data_plots", help="folder for visemes.png and sentence.png (default: out/data_plots)")
    plot.add_argument("--text", default="Bob brought my mother a maple pie before the bumpy bus ride.", help="the sentence to speak")
    plot.add_argument("--engine", default="espeak-ng", help="speech synthesizer: espeak-ng, festival or flite (default: espeak-ng)")
    plot.add_argument("--voice", default="en-us", help="the synthesizer's voice (default: en-us)")
    plot.add_argument("--seed", type=int, default=0, help="seed of the articulation's variation (default: 0)")
    plot.set_defaults(func=_cmd_data_plot)


def _add_render_videos(data_sub: argparse._SubParsersAction) -> None:
    videos = data_sub.add_parser("render-videos", help="render ground-truth videos of the default head (clip + manifest; resumable)")
    videos.add_argument("--count", type=int, required=True, help="corpus entries (some also get a relit video)")
    videos.add_argument("--out", required=True, help="corpus folder (resumed if it holds one)")
    videos.add_argument("--seed", type=int, default=0, help="seed of the expressions, head motion and lighting (default: 0)")
    videos.add_argument("--frames", type=int, default=60, help="frames per clip at 30 fps (default: 60)")
    videos.add_argument("--heldout-share", type=float, default=0.2, help="share of entries held out for evaluation (default: 0.2)")
    videos.add_argument("--relit-share", type=float, default=0.25, help="share of entries rendered again under another lighting")
    videos.add_argument("--quiet", action="store_true", help="no progress bar")
    videos.set_defaults(func=_cmd_data_render_videos)


def _cmd_data_synth(args: argparse.Namespace) -> int:
    """Synthetic speech + articulation corpus, with a progress bar in seconds of audio."""
    import time

    from tqdm import tqdm

    from ..core.data.corpus import synth_corpus

    start = time.perf_counter()
    with tqdm(total=round(args.hours * 3600), unit="s audio", disable=args.quiet) as bar:
        summary = synth_corpus(args.out, args.hours, seed=args.seed, workers=args.workers,
                               languages=tuple(args.languages), progress=lambda seconds: bar.update(round(seconds)),
                               recombine_share=args.recombine, skip=args.skip)
    elapsed = time.perf_counter() - start
    print(json.dumps(summary["hours"]), f"in {elapsed:.0f} s; corpus in {args.out}")
    return EXIT_OK


def _cmd_data_real(args: argparse.Namespace) -> int:
    """One speaker's real talking-face videos (+ GRID word alignments) → training shards in the corpus format."""
    from tqdm import tqdm

    from ..core.real_av.shards import build_real_corpus, read_grid_words

    videos = sorted(p for p in Path(args.videos).iterdir() if p.suffix.lower() in (".mpg", ".mp4", ".mov", ".avi"))
    if args.limit:
        videos = videos[:args.limit]
    if not videos:
        raise LatticeTalkError(f"{args.videos}: no videos (.mpg/.mp4/.mov/.avi)")
    alignments = Path(args.alignments)

    def words_of(video: Path) -> list[str]:
        path = alignments / f"{video.stem}.align"
        if not path.is_file():
            raise LatticeTalkError(f"{path}: no word alignment for {video.name}")
        return read_grid_words(path)

    bar = tqdm(total=2 * len(videos), unit="video")

    def progress(stage: str, fraction: float) -> None:
        bar.set_description(stage)
        bar.update(1)

    summary = build_real_corpus(videos, words_of, args.speaker, args.out, args.cache or Path(args.out) / "tracks",
                                heldout_share=args.heldout_share, augmented_copies=args.augmented_copies,
                                progress=progress)
    bar.close()
    return _report_corpus(summary)


def _report_corpus(summary: dict) -> int:
    """A data command's last lines: the corpus's size, and each recording it left out."""
    print(json.dumps({k: summary[k] for k in ("utterances", "hours")}))
    for line in summary["failed"]:
        print(f"left out: {line}", file=sys.stderr)
    return EXIT_OK


def _cmd_data_voices(args: argparse.Namespace) -> int:
    """Real read speech of many speakers (+ its text) → training shards: aligned phones, a teacher model's motion."""
    from tqdm import tqdm

    from ..core.real_av.voice_shards import build_voice_corpus, grid_lines, read_line_table
    from ..core.speech.pipeline import MODEL_DIR

    lines = (grid_lines(args.grid) if args.grid else read_line_table(args.lines, args.root))[:args.limit or None]
    bar = tqdm(total=len(lines), unit="line")

    def progress(stage: str, fraction: float) -> None:
        bar.set_description(stage)
        bar.update(1)

    summary = build_voice_corpus(lines, args.teacher or MODEL_DIR, args.out, args.tag, heldout_share=args.heldout_share,
                                 augmented_copies=args.augmented_copies, progress=progress)
    bar.close()
    return _report_corpus(summary)


def _cmd_data_heldout(args: argparse.Namespace) -> int:
    """The manifest's files, found by sha256 in local clones of their sources, copied under the manifest's names."""
    from ..core.real_av.assemble import assemble_folder
    from ..core.real_av.manifest import load_manifest

    clips = [c for c in load_manifest(args.manifest) if args.split == "all" or c.split == args.split]
    result = assemble_folder(clips, args.sources, args.out,
                             progress=lambda stage: print(stage, file=sys.stderr))
    print(f"{len(result['found'])} files in {args.out}")
    if result["missing"]:
        raise LatticeTalkError(f"{len(result['missing'])} files are in none of the sources (clone the repositories "
                               "named here; a file dropped later is found in their history): " + "; ".join(result["missing"]))
    return EXIT_OK


def _cmd_data_mix(args: argparse.Namespace) -> int:
    """Several corpora → one training folder of links (a corpus's training shards as many times as asked)."""
    from ..core.data.mix import mix_corpora, parse_part

    parts = ([parse_part(text) for text in args.corpus] + [parse_part(text, heldout=False) for text in args.train_only]
             + [parse_part(f"{text}*0") for text in args.heldout_only])
    summary = mix_corpora(parts, args.out)
    print(json.dumps(summary["hours"]), f"in {args.out}")
    return EXIT_OK


def _cmd_data_plot(args: argparse.Namespace) -> int:
    """Mouth targets (visemes) and one sentence's curves, to check the articulation by eye."""
    from ..core.data.plots import plot_visemes
    from ..core.data.tts import synthesize
    from ..core.data.articulation import articulate
    from ..core.heads import create
    from ..core.landmark_rig import LandmarkRig
    from ..core.metrics import plot_comparison
    from ..core.data.corpus import CorpusUtterance, FPS

    head = create("default")
    rig = LandmarkRig(head)
    out = Path(args.out)
    print(f"wrote {plot_visemes(rig, head.expression_names, out / 'visemes.png')}")
    speech = synthesize(args.text, args.engine, args.voice)
    motion = articulate(speech.phonemes, head.expression_names, FPS, speech.audio, speech.sample_rate, seed=args.seed)
    track = CorpusUtterance("plot", speech.audio, speech.sample_rate, speech.phonemes, FPS, head.expression_names,
                            motion.units, motion.jaw, motion.head_rotation).motion(rig)
    png = plot_comparison(track, track, out / "sentence.png", title=f"{args.engine} {args.voice}: “{args.text}”")
    print(f"wrote {png}")
    return EXIT_OK


def _cmd_data_render_videos(args: argparse.Namespace) -> int:
    """Ground-truth videos of the default head (Blender Workbench) with their clips and a manifest; resumable."""
    import time

    from tqdm import tqdm

    from ..scene.video_render import render_video_corpus

    start = time.perf_counter()
    with tqdm(desc="videos", unit="video", disable=args.quiet) as bar:
        summary = render_video_corpus(args.out, args.count, seed=args.seed, n_frames=args.frames,
                                      heldout_share=args.heldout_share, relit_share=args.relit_share,
                                      progress=lambda n, entry, seconds: (bar.update(1), bar.set_postfix_str(entry["name"])))
    summary["seconds"] = round(time.perf_counter() - start, 1)
    print(json.dumps(summary))
    return EXIT_OK
