"""`speech recipe`: the shipped speech model's whole recipe (vendor_models/speech/recipe.json) as one command.
The toy scale runs every step for real — corpora, mixes, pretraining, the training stages, the real-lips stage on
the two GRID s1 clips the repository ships, calibration — and the full scale's commands are the model card's."""

from __future__ import annotations

import json
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from real_media import GRID_DIR  # noqa: E402
from lattice_talk.cli import main  # noqa: E402
from lattice_talk.core.paths import DATASETS_DIR  # noqa: E402

CARD = Path(__file__).resolve().parents[1] / "vendor_models" / "speech" / "MODEL_CARD.md"
DRY_RUN = ("python -m lattice_talk speech recipe --work work --grid GRID/s1 --voices VOICES "
           "--whisper faster-whisper-base/model.bin --dry-run")
# Options whose value is a file or folder: the card's recorded commands named their own folders.
PATH_OPTIONS = {"--out", "--corpus", "--init-from", "--encoder", "--model", "--checkpoint", "--videos", "--alignments",
                "--root", "--teacher", "--lines", "--ct2", "--phonetic-encoder"}


def recipe(work: Path, *more: str) -> list[str]:
    return ["speech", "recipe", "--work", str(work), *more]


def steps_run(output: str) -> list[str]:
    """Names of the steps that ran (each ends with a line '[k/n] NAME: S s')."""
    return re.findall(r"^\[\d+/\d+\] (\S+): [\d.]+ s$", output, re.M)


def test_toy_recipe_builds_a_model_from_nothing_and_resumes(tmp_path, capsys):
    from test_phonetic_encoder import tiny_whisper

    from lattice_talk.core.heads import create
    from lattice_talk.core.jobs import run_sync
    from lattice_talk.core.pipeline import GenerateRequest
    from lattice_talk.core.speech.pipeline import SpeechPipeline

    work = tmp_path / "work"
    names = [step["name"] for step in json.loads((CARD.parent / "recipe.json").read_text())["steps"]]
    # Without the real data folder: one error naming the option and the data card, and nothing done.
    assert main(recipe(work, "--scale", "toy")) == 2
    error = capsys.readouterr().err
    assert error.count("error:") == 1 and "--grid DIR" in error and "--voices DIR" in error and "datasets/README.md" in error
    assert "--whisper FILE" in error and "Phonetic encoder" in error
    assert not work.exists()
    # Part of the way, then the rest: the finished steps are skipped, the others run.
    assert main(recipe(work, "--scale", "toy", "--until", "export-encoder")) == 0
    assert steps_run(capsys.readouterr().out) == names[:names.index("export-encoder") + 1]
    assert not (work / "model").exists()
    # The toy's voices: the two GRID clips as a line table (tests/data/grid_s1/voices.tsv); its Whisper: a tiny
    # random one in faster-whisper's file format.
    tiny_whisper(tmp_path / "whisper.bin")
    data = ("--grid", str(GRID_DIR), "--voices", str(GRID_DIR), "--whisper", str(tmp_path / "whisper.bin"))
    assert main(recipe(work, "--scale", "toy", *data)) == 0
    output = capsys.readouterr().out
    assert steps_run(output) == names[names.index("export-encoder") + 1:]
    assert output.count("done before") == names.index("export-encoder") + 1
    log = json.loads((work / "recipe_log.json").read_text())
    assert list(log["steps"]) == names and all(entry["seconds"] >= 0 for entry in log["steps"].values())
    real = json.loads((work / "data" / "real_s1" / "corpus.json").read_text())
    assert real["utterances"] == {"train": 1, "heldout": 1}  # both GRID clips tracked and aligned
    grid = json.loads((work / "data" / "v_grid_s1" / "corpus.json").read_text())
    assert grid["speakers"] == ["grid_s1"] and grid["utterances"]["heldout"] == 2  # the GRID folder read as lines
    voices = json.loads((work / "data" / "v_multi" / "corpus.json").read_text())
    assert voices["audio_only"] and voices["speakers"] == ["grid_s1"] and not voices["failed"]
    # Everything done: a rerun runs nothing.
    assert main(recipe(work, "--scale", "toy", *data)) == 0
    assert steps_run(capsys.readouterr().out) == []
    # The result is one self-contained model (encoder inside): moved elsewhere, it still speaks.
    moved = shutil.move(work / "model", tmp_path / "moved")
    config = json.loads((Path(moved) / "decoder.json").read_text())
    assert config["encoder"] == "encoder" and (config["seal"]["from"], config["seal"]["full"]) == (0.5, 0.9)
    assert config["features"] == "log_mel_80_ssl_hidden_states_and_phonetic_states"  # the phonetic decoder, as shipped
    assert config["phonetic_encoder"] == "phonetic_encoder" and not (Path(moved) / "train_state.json").exists()
    detector = json.loads((Path(moved) / "bilabial.json").read_text())  # the p/b/m detector rides in the same folder
    assert detector["threshold"] == 0.9 and "dev split" in detector["threshold_chosen_on"]
    assert detector["encoder"] == "phonetic_encoder" and (Path(moved) / "phonetic_encoder" / "model.safetensors").is_file()
    opening = json.loads((Path(moved) / "opening.json").read_text())  # and the mouth-opening head, on the same encoder
    assert opening["encoder"] == "phonetic_encoder" and opening["corpora"] == [str(work / "data" / "real_s1")]
    shutil.move(work, tmp_path / "work_gone")  # nothing it reads may be left behind in the work folder
    clip = run_sync(SpeechPipeline(moved, threads=1),
                    GenerateRequest(audio_path=GRID_DIR / "pbai7a.mpg", head=create("default")))
    assert clip.n_frames > 60 and np.isfinite(clip.expression).all()


def test_full_scale_commands_are_the_model_cards(capsys):
    shipped = CARD.parent.parent / "speech_rebuilt"
    assert main(recipe(shipped, "--grid", "GRID/s1")) == 2 and not shipped.exists()  # never beside the shipped models
    assert "inside vendor_models" in capsys.readouterr().err
    assert main(shlex.split(DRY_RUN)[3:]) == 0
    printed = capsys.readouterr().out
    card = CARD.read_text()
    rebuild = card[card.index("## Rebuild"):]
    listed = rebuild[rebuild.index(f"`{DRY_RUN}`"):].split("```")[1].lstrip("\n")
    assert printed.replace(str(DATASETS_DIR), "datasets") == listed
    # Each command the card records for the shipped model, in its order, has the same options in the recipe
    # (folders aside); the recipe adds the mixes the card made by hand and the seal window it wrote by hand.
    recorded = [line for block in card[:card.index("## Rebuild")].split("```")[1::2]
                for line in re.sub(r"\\\n\s*", "", block).splitlines() if line.startswith("python -m lattice_talk")]
    recipe_lines = [line for line in printed.splitlines() if " data mix " not in line and " --window " not in line]
    assert len(recorded) == len(recipe_lines) == 43
    for card_line, recipe_line in zip(recorded, recipe_lines):
        assert _settings(card_line) == _settings(recipe_line), card_line


def _settings(command: str) -> list[str]:
    """The command's words without its folders (``#`` comments dropped)."""
    words = shlex.split(command, comments=True)[3:]
    return [word for before, word in zip([None, *words], words) if word not in PATH_OPTIONS and before not in PATH_OPTIONS]
