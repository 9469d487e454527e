"""The preview benchmark runs on the scene the CLI builds (it broke once when new_head_scene's signature changed)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("bpy")

from lattice_talk.bench import run_benchmark  # noqa: E402


def test_bench_preview_renders_the_sample_take_and_writes_its_table(tmp_path):
    rows = run_benchmark("preview", tmp_path / "bench_preview.json")
    written = json.loads((tmp_path / "bench_preview.json").read_text())
    assert written["benchmark"] == "preview" and written["rows"] == rows
    assert [r["unit"] for r in rows] == ["fps", "fps"]
    assert all(r["value"] > 0.5 for r in rows)  # 127 frames of the sample rendered, not an empty timeline
