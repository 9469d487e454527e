"""The shipped speech model from nothing: its recipe (``vendor_models/speech/recipe.json``) run step by step.

The recipe is data: an ordered list of CLI commands (corpora, mixes, encoder pretraining, the decoder's training
stages, calibration) with placeholders for the work folder, the package's ``datasets`` folder (the line tables
of real data) and the user's local real-data folders, and per-step options that shrink it at toy scale. A new stage is new entries in that file. Each step runs through the CLI's
own entry point (passed in as ``run``), so the recipe and the commands in the model card cannot drift apart.
A finished step is recorded in ``recipe_log.json`` in the work folder with its seconds; a rerun skips the finished
steps and runs the rest (``speech train`` and ``speech pretrain`` resume a half-finished run themselves)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import string
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import LatticeTalkError
from ..paths import DATASETS_DIR
from .pipeline import MODEL_DIR
from .model import BILABIAL_CONFIG, BILABIAL_FILE, DECODER_CONFIG, DECODER_FILE, OPENING_CONFIG, OPENING_FILE

RECIPE_FORMAT = "lattice_talk.speech_recipe/1"
LOG_FILE = "recipe_log.json"
SCALES = ("full", "toy")


@dataclass(frozen=True)
class Step:
    name: str
    argv: tuple[str, ...]  # after ``python -m lattice_talk``, placeholders filled in
    output: Path  # exists once the step has run (with its log entry: finished)

    def command(self) -> str:
        return shlex.join(("python", "-m", "lattice_talk", *self.argv))


def load_recipe(path: str | Path) -> dict:
    """A recipe file (the shipped one: ``vendor_models/speech/recipe.json``), checked."""
    recipe = json.loads(Path(path).read_text())
    if recipe.get("format") != RECIPE_FORMAT:
        raise LatticeTalkError(f"{path}: not a speech recipe ({RECIPE_FORMAT})")
    names = [step["name"] for step in recipe["steps"]]
    if len(set(names)) != len(names):
        raise LatticeTalkError(f"{path}: step names must be unique")
    return recipe


def plan(recipe: dict, work: str | Path, scale: str = "full", data: dict[str, str | None] | None = None,
         until: str | None = None) -> list[Step]:
    """The recipe's steps up to ``until`` (inclusive) at ``scale``, placeholders filled in.

    ``data``: the user's folders by input name (``grid``...). Every input the planned steps read must be given:
    otherwise one error naming the option and its data card, before any step runs."""
    if scale not in SCALES:
        raise LatticeTalkError(f"scale {scale!r}: choose one of {', '.join(SCALES)}")
    _outside_shipped_models(work, "--work")
    steps = recipe["steps"]
    if until is not None:
        names = [step["name"] for step in steps]
        if until not in names:
            raise LatticeTalkError(f"--until {until}: no such step; the steps are {', '.join(names)}")
        steps = steps[:names.index(until) + 1]
    values = {"work": str(work), "datasets": str(DATASETS_DIR),
              **{name: folder for name, folder in (data or {}).items() if folder}}
    missing = sorted({field for step in steps for text in (*step["argv"], step["output"])
                      for _, field, _, _ in string.Formatter().parse(text) if field and field not in values})
    if missing:
        inputs = recipe.get("inputs", {})
        needs = "; ".join(input_usage(inputs[name]) if name in inputs else f"{{{name}}} (not an input of this recipe)"
                          for name in missing)
        raise LatticeTalkError(f"the recipe reads data kept on your disk: give {needs}; or stop before that step "
                               "with --until STEP")
    return [Step(step["name"], tuple(arg.format_map(values) for arg in _scaled(step, scale)),
                 Path(step["output"].format_map(values))) for step in steps]


def input_usage(spec: dict) -> str:
    """An input's option, what it is and the data card that says where to get it (its source and license)."""
    return f"{spec['option']} {spec.get('metavar', 'DIR')}: {spec['help']} (where to get it: {spec['card']})"


def _scaled(step: dict, scale: str) -> list[str]:
    """The step's arguments with its ``toy`` options replaced (or added) at toy scale."""
    argv = list(step["argv"])
    if scale == "toy":
        for option, value in step.get("toy", {}).items():
            if option in argv:
                argv[argv.index(option) + 1] = str(value)
            else:
                argv += [option, str(value)]
    return argv


def model_folder(recipe: dict, work: str | Path) -> Path:
    """The decoder folder the recipe ends with (its ``model``)."""
    return Path(recipe["model"].format(work=work))


def run_recipe(steps: list[Step], work: str | Path, scale: str, run: Callable[[list[str]], int],
               echo: Callable[[str], None] = print) -> dict:
    """Run the steps in order with ``run`` (the CLI's ``main``), skipping the finished ones; returns the log.

    The log (``recipe_log.json`` in ``work``) records each finished step's arguments and seconds. Steps are
    skipped only up to the first that runs: once a step has run, every later one runs again, since it reads
    what the earlier ones made."""
    work = Path(work)
    log_path = work / LOG_FILE
    log = json.loads(log_path.read_text()) if log_path.is_file() else {"scale": scale, "steps": {}}
    if log["scale"] != scale:
        raise LatticeTalkError(f"{work}: made at {log['scale']} scale, not {scale}; give another --work folder")
    work.mkdir(parents=True, exist_ok=True)
    resuming = True
    for k, step in enumerate(steps, 1):
        done = log["steps"].get(step.name)
        if resuming and done is not None and done["argv"] != list(step.argv):
            raise LatticeTalkError(f"{work}: step {step.name} ran there with other arguments; give another --work folder")
        if resuming and done is not None and step.output.exists():
            echo(f"[{k}/{len(steps)}] {step.name}: done before ({done['seconds']:.0f} s), skipped")
            continue
        resuming = False
        echo(f"[{k}/{len(steps)}] {step.name}: {step.command()}")
        start = time.perf_counter()
        code = run(list(step.argv))
        if code != 0:
            raise LatticeTalkError(f"step {step.name} failed (exit {code}); fix the cause and run the recipe again: "
                                   "finished steps are kept")
        seconds = time.perf_counter() - start
        log["steps"][step.name] = {"argv": list(step.argv), "seconds": round(seconds, 1)}
        _write_json(log_path, log)
        echo(f"[{k}/{len(steps)}] {step.name}: {seconds:.1f} s")
    return log


def ship_model(decoder_dir: str | Path, out: str | Path) -> Path:
    """The trained decoder as it ships: its weights and ``decoder.json`` (and its p/b/m detector and mouth-opening
    head with the phonetic encoder they, and a decoder on its states, read) in ``out`` with the
    encoder it names copied inside as ``encoder/``, so the folder moves as one model. ``out`` is replaced; it may not be a shipped model."""
    decoder_dir, out = Path(decoder_dir), Path(out)
    _outside_shipped_models(out, "the rebuilt model")
    config = json.loads((decoder_dir / DECODER_CONFIG).read_text())
    side = out.with_name(out.name + ".tmp")  # written aside and moved in whole: no half model
    shutil.rmtree(side, ignore_errors=True)
    side.mkdir(parents=True)
    try:
        _fill_model_folder(decoder_dir, config, side)
    except BaseException:  # a refused or failed copy leaves nothing half-made behind
        shutil.rmtree(side, ignore_errors=True)
        raise
    shutil.rmtree(out, ignore_errors=True)
    os.replace(side, out)
    return out


def _fill_model_folder(decoder_dir: Path, config: dict, side: Path) -> None:
    """The decoder, its heads and every encoder they read copied into ``side``; ``config`` (written there last) names
    the copies."""
    shutil.copy2(decoder_dir / DECODER_FILE, side / DECODER_FILE)
    for name in (BILABIAL_FILE, BILABIAL_CONFIG, OPENING_FILE, OPENING_CONFIG):  # its heads, when it has them
        if (decoder_dir / name).is_file():
            shutil.copy2(decoder_dir / name, side / name)
    from . import bilabial, opening

    for name, fix in ((BILABIAL_CONFIG, bilabial.FIX), (OPENING_CONFIG, opening.FIX)):  # each head's encoder, once
        encoder = bilabial.config_encoder(decoder_dir, name, fix)
        if encoder is not None and not (side / encoder.name).exists():
            shutil.copytree(encoder, side / encoder.name)
    if "encoder" in config:
        shutil.copytree(decoder_dir / config["encoder"], side / "encoder")  # a relative name reads from the decoder
        config["encoder"] = "encoder"
    if "phonetic_encoder" in config:  # a decoder that reads the phonetic states too: the heads' encoder, or its own
        _copy_phonetic_encoder(decoder_dir, config, side)
    _write_json(side / DECODER_CONFIG, config)


def _copy_phonetic_encoder(decoder_dir: Path, config: dict, side: Path) -> None:
    """The decoder's phonetic encoder into the shipped folder as PHONETIC_DIR, where the heads keep theirs (which
    must then be the same weights), and ``config`` pointed at it."""
    import filecmp

    from .phonetic_encoder import PHONETIC_DIR, WEIGHTS_FILE

    phonetic = decoder_dir / config["phonetic_encoder"]
    if not (phonetic / WEIGHTS_FILE).is_file():
        raise LatticeTalkError(f"{decoder_dir / DECODER_CONFIG}: its \"phonetic_encoder\" ({phonetic}) holds no "
                               f"{WEIGHTS_FILE}; copy that folder back (speech import-whisper makes one)")
    if not (side / PHONETIC_DIR).exists():
        shutil.copytree(phonetic, side / PHONETIC_DIR)
    elif not filecmp.cmp(phonetic / WEIGHTS_FILE, side / PHONETIC_DIR / WEIGHTS_FILE, shallow=False):
        raise LatticeTalkError(f"{decoder_dir}: its decoder reads a phonetic encoder ({phonetic}) other than the one "
                               "its heads read; train them on one encoder")
    config["phonetic_encoder"] = PHONETIC_DIR


def _outside_shipped_models(path: str | Path, what: str) -> None:
    if Path(path).resolve().is_relative_to(MODEL_DIR.parent):
        raise LatticeTalkError(f"{path}: inside vendor_models, which holds the shipped models; give {what} another folder")


def _write_json(path: Path, data: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(temporary, path)
