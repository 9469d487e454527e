"""Fuzzing the audio loader and the speech pipeline: 200 mutated WAVs (fixed seed, lattice_talk.bench.mutated_wav)
each give a take or one LatticeTalkError naming the file — never another exception. ``bench fuzz`` runs 1000."""

from __future__ import annotations

import pytest

pytest.importorskip("soundfile")
pytest.importorskip("torch")

from lattice_talk.audio_fuzz import fuzz_audio  # noqa: E402


def test_200_mutated_wavs_give_a_take_or_one_clear_error_naming_the_file(tmp_path):
    result = fuzz_audio(200, folder=tmp_path)
    assert result["bug"] == 0, "\n".join(f"{b['mutant']} {b['mutation']}: {b['error']} {b['at']}" for b in result["bugs"])
    assert result["take"] >= 50 and result["refused"] >= 20  # the mutants reach both sides of the line
