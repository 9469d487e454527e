"""``speech``: the speech model — encoder pretraining, decoder training and calibration, the recipe that rebuilds
the shipped model, evaluation."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from ..core.errors import LatticeTalkError
from ..core.paths import DATASETS_DIR
from .common import EXIT_OK, SPEECH_RECIPE, _real_clip_options


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """The ``speech`` command and its subcommands."""
    speech = sub.add_parser("speech", help="speech model: encoder pretraining, decoder training, evaluation")
    speech_sub = speech.add_subparsers(dest="speech_command", required=True, metavar="SPEECH_COMMAND")
    _add_pretrain(speech_sub)
    _add_export_encoder(speech_sub)
    _add_import_whisper(speech_sub)
    _add_train(speech_sub)
    _add_calibrate(speech_sub)
    _add_train_bilabial(speech_sub)
    _add_train_opening(speech_sub)
    _add_recipe(speech_sub)
    _add_eval(speech_sub)
    _add_eval_real(speech_sub)
    _add_eval_voices(speech_sub)


def _add_pretrain(speech_sub: argparse._SubParsersAction) -> None:
    pre = speech_sub.add_parser("pretrain", help="pretrain the small wav2vec 2.0 encoder on a corpus (resumes from --out)")
    pre.add_argument("--corpus", required=True, help="corpus folder from 'data synth'")
    pre.add_argument("--out", required=True, help="checkpoint folder (resumed if it holds one)")
    pre.add_argument("--steps", type=int, required=True, help="length of the whole run (sets the schedules)")
    pre.add_argument("--batch-seconds", type=float, default=32.0, help="seconds of audio per batch (default: 32)")
    pre.add_argument("--crop-seconds", type=float, default=4.0, help="length of each crop (default: 4)")
    pre.add_argument("--lr", type=float, default=5e-4, help="peak learning rate (default: 5e-4)")
    pre.add_argument("--seed", type=int, default=0, help="seed of the crops, masks and initial weights (default: 0)")
    pre.add_argument("--save-every", type=int, default=200, help="checkpoint every N steps (default: 200)")
    pre.add_argument("--minutes", type=float, default=None, help="stop after M minutes and checkpoint (resume later)")
    pre.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    pre.add_argument("--no-resume", action="store_true", help="start over even if --out holds a checkpoint")
    pre.add_argument("--quiet", action="store_true", help="no progress bar")
    pre.add_argument("--front-end", choices=("conv", "log_mel"), default="log_mel",
                     help="feature front end of a new run: learned convolutions or a fixed log-mel filterbank (default)")
    pre.set_defaults(func=_cmd_speech_pretrain)


def _add_export_encoder(speech_sub: argparse._SubParsersAction) -> None:
    export = speech_sub.add_parser("export-encoder", help="a pretraining checkpoint's encoder as it ships (fp16, no "
                                                          "quantizer or optimizer state)")
    export.add_argument("--checkpoint", required=True, help="folder written by 'speech pretrain'")
    export.add_argument("--out", required=True, help="new folder, e.g. inside the decoder's folder: models/speech/encoder")
    export.set_defaults(func=_cmd_speech_export_encoder)


def _add_import_whisper(speech_sub: argparse._SubParsersAction) -> None:
    imp = speech_sub.add_parser("import-whisper", help="the first layers of Whisper's audio encoder, from a faster-whisper "
                                                      "(CTranslate2) model.bin, as the p/b/m detector's phonetic encoder")
    imp.add_argument("--ct2", required=True, help="model.bin of a faster-whisper model (e.g. Systran/faster-whisper-base)")
    imp.add_argument("--layers", type=int, default=3, help="encoder layers to keep (default: 3)")
    imp.add_argument("--source", default="", help="where the file came from, kept in the config")
    imp.add_argument("--out", required=True, help="folder to write (model.safetensors + config.json)")
    imp.set_defaults(func=_cmd_speech_import_whisper)


def _add_train(speech_sub: argparse._SubParsersAction) -> None:
    train = speech_sub.add_parser("train", help="train the decoder on a corpus (resumes from --out)")
    train.add_argument("--corpus", required=True, help="corpus folder from 'data synth'")
    train.add_argument("--out", required=True, help="decoder folder (resumed if it holds a run)")
    train.add_argument("--epochs", type=int, default=30, help="most epochs (default: 30; stops early without held-out gain)")
    train.add_argument("--steps-per-epoch", type=int, default=150, help="training steps per epoch (default: 150)")
    train.add_argument("--seed", type=int, default=0, help="seed of the batches and initial weights (default: 0)")
    train.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: 2e-3)")
    train.add_argument("--hidden", type=int, default=160, help="decoder width (ignored with --init-from)")
    train.add_argument("--dilations", type=int, nargs="+", default=[1, 2, 4, 8, 1, 2],
                       help="one residual block per dilation (ignored with --init-from)")
    train.add_argument("--init-from", default=None, help="trained decoder folder to fine-tune")
    train.add_argument("--no-voice-perturbation", action="store_true", help="train on the features as they are")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--encoder", default=None,
                       help="SSL encoder folder (from 'speech pretrain' or a transformers checkpoint): its hidden states "
                            "join the log-mel bands as features")
    train.add_argument("--encoder-states-only", action="store_true",
                       help="with --encoder: the encoder's hidden states replace the log-mel bands")
    train.add_argument("--phonetic-encoder", default=None,
                       help="with --encoder: a phonetic encoder folder (from 'speech import-whisper'), whose states "
                            "follow the encoder's (the p/b/m detector and mouth-opening head read the same states)")
    train.add_argument("--calibrate-limit", type=int, default=200,
                       help="choose the seal window on this many held-out utterances after training (0: keep the default)")
    train.set_defaults(func=_cmd_speech_train)


def _add_train_bilabial(speech_sub: argparse._SubParsersAction) -> None:
    det = speech_sub.add_parser("train-bilabial", help="train a speech model's p/b/m detector on real speech with "
                                                       "aligned phones (seals the lips where it is sure)")
    det.add_argument("--model", required=True, help="trained speech model folder whose features the detector reads")
    det.add_argument("--corpus", nargs="+", required=True,
                     help="real speech folders from 'data voices' or 'data real' (their aligned phones are the labels)")
    det.add_argument("--out", required=True, help="new folder: a copy of --model with the detector (or --model itself)")
    det.add_argument("--epochs", type=int, default=12, help="most epochs (default: 12; stops early without held-out gain)")
    det.add_argument("--steps-per-epoch", type=int, default=100, help="training steps per epoch (default: 100)")
    det.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: 2e-3)")
    det.add_argument("--threshold", type=float, default=0.5,
                     help="p/b/m probability from which a frame is sealed (default: 0.5; choose it on real dev clips)")
    det.add_argument("--phonetic-encoder", default=None,
                     help="folder from 'speech import-whisper': the detector reads its states instead of the decoder's "
                          "features (copied into --out)")
    det.add_argument("--jaw-gate", type=float, default=None,
                     help="seal a detection only where the decoder's jaw is at most this open, radians (default: 0.06; "
                          "0.45, the jaw's range: everywhere)")
    det.add_argument("--chosen-on", default="the default (speech train-bilabial)",
                     help="what the threshold was chosen on, kept in bilabial.json")
    det.add_argument("--seed", type=int, default=0, help="seed of the batches and initial weights (default: 0)")
    det.add_argument("--quiet", action="store_true", help="no progress bar")
    det.set_defaults(func=_cmd_speech_train_bilabial)


def _add_train_opening(speech_sub: argparse._SubParsersAction) -> None:
    head = speech_sub.add_parser("train-opening", help="train a speech model's mouth-opening head on real talking faces "
                                                       "(the A/V offset estimate's evidence)")
    head.add_argument("--model", required=True,
                      help="speech model folder with a p/b/m detector on the phonetic encoder (the head reads it too)")
    head.add_argument("--corpus", nargs="+", required=True, help="real talking-face folders from 'data real'")
    head.add_argument("--out", required=True, help="new folder: a copy of --model with the head (or --model itself)")
    head.add_argument("--epochs", type=int, default=12, help="most epochs (default: 12; stops early without held-out gain)")
    head.add_argument("--steps-per-epoch", type=int, default=100, help="training steps per epoch (default: 100)")
    head.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default: 1e-3)")
    head.add_argument("--chosen-on", default="the default (speech train-opening)",
                      help="what chose this head (for the model card), kept in opening.json")
    head.add_argument("--seed", type=int, default=0, help="seed of the batches and initial weights (default: 0)")
    head.add_argument("--jaw-weight", type=float, default=0.0,
                      help="how far a take's jaw follows the head, 0–1 (default 0: evidence for the A/V offset only; "
                           "the speech recipe's teacher for real voices uses 1)")
    head.add_argument("--quiet", action="store_true", help="no progress bar")
    head.set_defaults(func=_cmd_speech_train_opening)


def _add_calibrate(speech_sub: argparse._SubParsersAction) -> None:
    cal = speech_sub.add_parser("calibrate", help="choose a decoder's seal window on a corpus's held-out utterances")
    cal.add_argument("--model", required=True, help="decoder folder (decoder.json is updated)")
    seal_source = cal.add_mutually_exclusive_group(required=True)
    seal_source.add_argument("--corpus", default=None, help="a corpus whose held-out split is NOT the one you report on")
    seal_source.add_argument("--window", type=float, nargs=2, metavar=("FROM", "FULL"), default=None,
                             help="write this window instead of choosing one: a choice made elsewhere, e.g. on real "
                             "speech (say where with --chosen-on)")
    cal.add_argument("--chosen-on", default="given by hand (speech calibrate --window)",
                     help="with --window: what the window was chosen on, kept in decoder.json")
    cal.add_argument("--limit", type=int, default=200, help="at most this many held-out utterances (default: 200)")
    cal.set_defaults(func=_cmd_speech_calibrate)


def _add_recipe(speech_sub: argparse._SubParsersAction) -> None:
    recipe = speech_sub.add_parser("recipe", help="rebuild the shipped speech model from nothing: corpora, mixes, "
                                   "pretraining, training, calibration (resumable; the model card's Rebuild section)")
    recipe.add_argument("--work", required=True, help="folder for the corpora, checkpoints, recipe_log.json and the "
                        "resulting model (WORK/model); run again to resume")
    recipe.add_argument("--scale", choices=("full", "toy"), default="full",
                        help="full: the model card's commands (hours on 2 cores); toy: the same steps shrunk to about "
                        "a minute (a smoke test)")
    for name, spec in json.loads(SPEECH_RECIPE.read_text()).get("inputs", {}).items():  # real data kept locally
        recipe.add_argument(spec["option"], dest=name, metavar=spec.get("metavar", "DIR"), default=None,
                            help=f"{spec['help']} (where to get it: {spec['card']})")
    recipe.add_argument("--until", default=None, metavar="STEP", help="stop after this step (a run prints each step's name; an unknown "
                        "name lists them all)")
    recipe.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    recipe.set_defaults(func=_cmd_speech_recipe)


def _add_eval(speech_sub: argparse._SubParsersAction) -> None:
    ev = speech_sub.add_parser("eval", help="held-out metrics on the default head (+ proxy checks on real clips)")
    ev.add_argument("--model", required=True, help="decoder folder")
    ev.add_argument("--corpus", required=True, help="corpus folder whose held-out split is scored")
    ev.add_argument("--limit", type=int, default=None, help="at most this many held-out utterances")
    ev.add_argument("--real", default=None, help="folder of real speech clips (*.wav) for the proxy checks")
    ev.add_argument("--json", default=None, help="also write the report here")
    ev.add_argument("--sheet", default=None, help="PNG contact sheet: each real clip at its loudest and quietest frame")
    ev.set_defaults(func=_cmd_speech_eval)


def _add_eval_real(speech_sub: argparse._SubParsersAction) -> None:
    real = speech_sub.add_parser("eval-real", help="lip sync against real talking faces (held-out manifest), with the "
                                 "loudness envelope as a baseline")
    real.add_argument("--data", required=True, help="folder holding the manifest's files (see datasets/README.md)")
    _real_clip_options(real, split="all")
    _compared_model_options(real)
    real.add_argument("--clips", nargs="*", default=None, help="only clips whose names start with these")
    real.add_argument("--out", default="reports/real_speech", help="folder for real_speech.json, tracks and figures")
    real.add_argument("--cache", default=None, help="folder for tracked lips (default: OUT/tracks)")
    real.add_argument("--figures", action="store_true", help="draw real vs predicted vs loudness per clip (PNG)")
    real.add_argument("--transcript-mode", action="store_true",
                      help="also score each model given the clips' transcripts (generate --transcript)")
    real.set_defaults(func=_cmd_speech_eval_real)


def _add_eval_voices(speech_sub: argparse._SubParsersAction) -> None:
    voices = speech_sub.add_parser("eval-voices", help="p/b/m closure on held-out real voices with their true words "
                                   "(audio only: no face needed)")
    voices.add_argument("--root", default=None, help="folder the table's audio paths are relative to: the cloned "
                        "sources (datasets/README.md); needed for the held-out voices, default for --lines: its folder")
    voices.add_argument("--split", choices=("dev", "test"), default="test",
                        help="dev: the speakers choices may read; test: read once for published figures (default: "
                        "test); the table is datasets/real_voices_SPLIT.tsv")
    voices.add_argument("--lines", default=None, help="another table of audio<TAB>text<TAB>speaker[<TAB>sha256<TAB>"
                        "source<TAB>license<TAB>FIRST-END] rows instead of the held-out voices")
    _compared_model_options(voices)
    voices.add_argument("--out", default="reports/real_voices", help="folder for real_voices.json")
    voices.set_defaults(func=_cmd_speech_eval_voices)


def _cmd_speech_pretrain(args: argparse.Namespace) -> int:
    """Self-supervised pretraining of the small speech encoder (wav2vec 2.0 objective), resumable, with a progress bar."""
    from tqdm import tqdm

    from ..core.speech.pretrain import pretrain, small_config

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    with tqdm(total=args.steps, unit="step", disable=args.quiet) as bar:
        def progress(step: int, steps: int, entry: dict) -> None:
            bar.update(step - bar.n)
            bar.set_postfix(loss=f"{entry['loss']:.3f}", ppl=f"{entry['perplexity']:.0f}", refresh=False)

        history = pretrain(args.corpus, args.out, args.steps, batch_seconds=args.batch_seconds, seed=args.seed,
                           resume=not args.no_resume, progress=progress, crop_seconds=args.crop_seconds, lr=args.lr,
                           save_every=args.save_every, max_minutes=args.minutes,
                           config=small_config(front_end=args.front_end))  # used only when no run is resumed
    if history:
        last = history[-1]
        print(f"step {last['step']}/{args.steps}: loss {last['loss']:.3f} (contrastive {last['contrastive']:.3f}), "
              f"codevector perplexity {last['perplexity']:.1f}; checkpoint in {args.out}")
    return EXIT_OK


def _cmd_speech_import_whisper(args: argparse.Namespace) -> int:
    """Whisper's first encoder layers → the phonetic encoder's folder (core.speech.ct2_whisper)."""
    from ..core.speech.ct2_whisper import import_whisper_encoder

    print(f"wrote {import_whisper_encoder(args.ct2, args.out, args.layers, args.source)}")
    return EXIT_OK


def _cmd_speech_export_encoder(args: argparse.Namespace) -> int:
    """A pretraining checkpoint's encoder as it ships: bare Wav2Vec2Model, fp16 safetensors."""
    from ..core.speech.pretrain import export_encoder

    print(f"encoder in {export_encoder(args.checkpoint, args.out)}")
    return EXIT_OK


def _cmd_speech_train(args: argparse.Namespace) -> int:
    """Train the decoder (features → default-head mouth motion) on a corpus, resumable, early stopping."""
    from tqdm import tqdm

    from ..core.speech.train import train_decoder

    with tqdm(total=args.epochs, unit="epoch", disable=args.quiet) as bar:
        def progress(epoch: int, train_loss: float, heldout_loss: float) -> None:
            bar.update(epoch + 1 - bar.n)
            bar.set_postfix(train=f"{train_loss:.3f}", heldout=f"{heldout_loss:.3f}", refresh=False)

        history = train_decoder(args.corpus, args.out, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                                seed=args.seed, lr=args.lr, hidden=args.hidden, dilations=tuple(args.dilations),
                                init_from=args.init_from, perturb=not args.no_voice_perturbation, encoder=args.encoder,
                                encoder_states_only=args.encoder_states_only,
                                phonetic_encoder=args.phonetic_encoder, progress=progress)
    print(f"best held-out loss {history['best']:.4f} at epoch {history['best_epoch']}; decoder in {args.out}")
    if args.calibrate_limit > 0:
        _calibrate(args.out, args.corpus, args.calibrate_limit)
    return EXIT_OK


@contextlib.contextmanager
def _epoch_progress(epochs: int, quiet: bool):
    """A progress bar over training epochs, and the callback the trainers report each epoch's losses to."""
    from tqdm import tqdm

    with tqdm(total=epochs, unit="epoch", disable=quiet) as bar:
        def progress(epoch: int, train_loss: float, heldout_loss: float) -> None:
            bar.update(epoch + 1 - bar.n)
            bar.set_postfix(train=f"{train_loss:.3f}", heldout=f"{heldout_loss:.3f}", refresh=False)

        yield progress


def _cmd_speech_train_bilabial(args: argparse.Namespace) -> int:
    """Train a p/b/m detector for a speech model on real speech (core.speech.bilabial_train)."""
    from ..core.speech.bilabial import JAW_GATE
    from ..core.speech.bilabial_train import train_detector
    from ..core.validate import number

    threshold = number(args.threshold, "--threshold", 0.0, 1.0, "give a probability between 0 and 1")
    with _epoch_progress(args.epochs, args.quiet) as progress:
        result = train_detector(args.model, args.corpus, args.out, epochs=args.epochs,
                                steps_per_epoch=args.steps_per_epoch, lr=args.lr, threshold=threshold, seed=args.seed,
                                chosen_on=args.chosen_on, phonetic_encoder=args.phonetic_encoder,
                                jaw_gate=JAW_GATE if args.jaw_gate is None else number(
                                    args.jaw_gate, "--jaw-gate", 0.0, 1.0, "give radians between 0 and 1"),
                                progress=progress)
    history = result["history"]
    print(f"best held-out loss {history['best']:.4f} at epoch {history['best_epoch']}; detector in {args.out}")
    for level, s in result["heldout_events"].items():
        print(f"  threshold {level}: {s['found']}/{s['bilabials']} held-out p/b/m found, {s['stray']} of {s['events']} "
              "detections on no p/b/m")
    return EXIT_OK


def _cmd_speech_train_opening(args: argparse.Namespace) -> int:
    """Train a mouth-opening head for a speech model on real talking faces (core.speech.opening_train)."""
    from ..core.speech.opening_train import train_opening_head

    with _epoch_progress(args.epochs, args.quiet) as progress:
        result = train_opening_head(args.model, args.corpus, args.out, epochs=args.epochs,
                                    steps_per_epoch=args.steps_per_epoch, lr=args.lr, seed=args.seed,
                                    chosen_on=args.chosen_on, jaw_weight=args.jaw_weight, progress=progress)
    history = result["history"]
    print(f"held-out mean r {result['heldout_mean_r']:.3f} at epoch {history['best_epoch']}; head in {args.out}")
    return EXIT_OK


def _calibrate(model_dir: str, corpus: str, limit: int) -> None:
    """Choose the decoder's seal window on a corpus's held-out split and write it into decoder.json."""
    from ..core.heads import create
    from ..core.landmark_rig import LandmarkRig
    from ..core.speech.features import decoder_features
    from ..core.speech.train import calibrate_seal, load_examples
    from ..core.speech.model import load_decoder, write_seal

    model, config = load_decoder(model_dir)
    examples = load_examples(corpus, "heldout", decoder_features(config, model_dir), limit=limit)
    seal, rows = calibrate_seal(model, examples, LandmarkRig(create("default")))
    for row in rows:
        print(f"seal {row['from']:.1f}–{row['full']:.1f}: lip error {row['lip_vertex_error_mm']:.3f} mm, "
              f"closure {100 * row['bilabial_closure_rate']:.1f} %")
    write_seal(model_dir, seal, f"{Path(corpus).name} held-out, {rows[0]['utterances']} utterances")
    print(f"seal window {seal[0]:.1f}–{seal[1]:.1f} written to {Path(model_dir) / 'decoder.json'}")


def _cmd_speech_calibrate(args: argparse.Namespace) -> int:
    """Choose a trained decoder's seal window (lowest lip error that keeps closure) on held-out utterances, or write
    one chosen elsewhere (--window)."""
    if args.window is None:
        _calibrate(args.model, args.corpus, args.limit)
        return EXIT_OK
    from ..core.speech.model import DECODER_CONFIG, write_seal
    from ..core.validate import input_file

    start, full = args.window
    if not 0.0 <= start < full <= 1.0:
        raise LatticeTalkError(f"--window {start} {full}: give probabilities FROM < FULL between 0 and 1")
    input_file(Path(args.model) / DECODER_CONFIG, "decoder config", "give a trained speech model folder")
    write_seal(args.model, (start, full), args.chosen_on)
    print(f"seal window {start:.1f}–{full:.1f} written to {Path(args.model) / DECODER_CONFIG}")
    return EXIT_OK


def _cmd_speech_recipe(args: argparse.Namespace) -> int:
    """The shipped speech model from nothing: every step of its recipe through this CLI, resumable, then the
    result in WORK/model."""
    from ..core.speech.recipe import load_recipe, model_folder, plan, run_recipe, ship_model

    recipe = load_recipe(SPEECH_RECIPE)
    data = {name: getattr(args, name) for name in recipe.get("inputs", {})}
    steps = plan(recipe, args.work, args.scale, data, until=args.until)
    if args.dry_run:
        for step in steps:
            print(step.command())
        return EXIT_OK
    log = run_recipe(steps, args.work, args.scale, args.run_cli)  # every step runs through this CLI
    print(f"{sum(entry['seconds'] for entry in log['steps'].values()) / 60:.1f} min of steps in all; per step in "
          f"{Path(args.work) / 'recipe_log.json'}")
    if args.until is None:
        print(f"speech model in {ship_model(model_folder(recipe, args.work), Path(args.work) / 'model')}")
    return EXIT_OK


def _cmd_speech_eval(args: argparse.Namespace) -> int:
    """Held-out corpus metrics on the default head, and the real-clip proxy checks."""
    from ..core.heads import create
    from ..core.landmark_rig import LandmarkRig
    from ..core.speech.pipeline import SpeechPipeline
    from ..core.speech.real_clip_checks import real_clip_checks
    from ..core.speech.features import decoder_features
    from ..core.speech.train import evaluate, load_examples
    from ..core.speech.model import load_decoder, seal_window
    from ..core.speech.bilabial import folder_detector
    from ..core.speech.opening import folder_opening_head

    model, config = load_decoder(args.model)
    head = create("default")
    examples = load_examples(args.corpus, "heldout", decoder_features(config, args.model), limit=args.limit)
    detector = folder_detector(args.model)
    report = {"heldout": evaluate(model, examples, LandmarkRig(head), seal_window(config), detector,
                                  folder_opening_head(args.model, detector=detector))}
    if args.real:
        clips = sorted(Path(args.real).glob("*.wav"))
        report["real_clips"], generated = real_clip_checks(SpeechPipeline(args.model), clips, head)
        if args.sheet:
            from ..scene.preview import render_clip_frames

            shots = [(clip, row[key]) for row, clip in zip(report["real_clips"], generated) for key in ("loudest_frame", "quietest_frame")]
            print(f"wrote {render_clip_frames(head, shots, Path(args.sheet), columns=2 * 4)}")
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return EXIT_OK


def _compared_model_options(parser: argparse.ArgumentParser) -> None:
    """--model and --recognition-mode of the commands that score speech models on real speech
    (:func:`_compared_models`)."""
    parser.add_argument("--model", action="append", default=None,
                        help="speech model folder; repeat to compare several (default: the shipped model)")
    parser.add_argument("--recognition-mode", action="store_true",
                        help="also score each model with the recogniser's words (generate --recognize-words)")


def _compared_models(args: argparse.Namespace) -> dict[str, str | Path]:
    """The --model folders by name, or the shipped model as "shipped"."""
    from ..core.speech.pipeline import MODEL_DIR

    return {"shipped": MODEL_DIR} if not args.model else {Path(m).name: m for m in args.model}


def _cmd_speech_eval_real(args: argparse.Namespace) -> int:
    """Speech models against real talking faces no training read (the held-out manifest), loudness beside them."""
    from ..core.real_av.evaluate import evaluate_real, format_summary, write_report
    from ..core.real_av.manifest import load_manifest

    manifest = load_manifest(args.manifest)
    clips = [c for c in manifest if args.split == "all" or c.split == args.split]
    if args.clips:
        clips = [c for c in clips if any(c.name.startswith(prefix) for prefix in args.clips)]
    models = _compared_models(args)
    modes = ("audio",) + ("transcript",) * args.transcript_mode + ("recognition",) * args.recognition_mode
    result = evaluate_real(clips, args.data, models, cache_dir=args.cache or Path(args.out) / "tracks",
                           progress=lambda stage: print(stage, file=sys.stderr), modes=modes, manifest=manifest)
    print(format_summary(result["summary"]))
    print(f"wrote {write_report(result, args.out)}")
    if args.figures:
        from ..core.real_av.plots import plot_clips

        for path in plot_clips(result, Path(args.out) / "figures"):
            print(f"wrote {path}")
    return EXIT_OK


def _cmd_speech_eval_voices(args: argparse.Namespace) -> int:
    """p/b/m closure of speech models on held-out real voices whose words are known (no face, no recogniser labels)."""
    from ..core.real_av.evaluate import model_predictors
    from ..core.real_av.voice_closures import evaluate_voices, format_voice_summary, write_voice_report
    from ..core.real_av.voice_shards import read_line_table

    if args.lines is None and args.root is None:
        raise LatticeTalkError("speech eval-voices: give --root, the folder holding the held-out voices' sources "
                               "(clone them as datasets/README.md, 'Held-out voices', says)")
    lines = read_line_table(args.lines or DATASETS_DIR / f"real_voices_{args.split}.tsv", args.root)
    predictors = model_predictors(_compared_models(args), ("audio",) + ("recognition",) * args.recognition_mode)
    result = evaluate_voices(lines, predictors, progress=lambda stage: print(stage, file=sys.stderr))
    print(format_voice_summary(result["summary"]))
    for skipped in result["unaligned"]:
        print(f"not scored: {skipped['audio']}: {skipped['reason']}", file=sys.stderr)
    print(f"wrote {write_voice_report(result, args.out)}")
    return EXIT_OK
