"""A run writes its output and nothing else outside the system temp folder: not the user's home (matplotlib's
caches, which MediaPipe's package would create) and not the working folder; and it starts no compiler or linker
(ctypes' library look-ups, which MediaPipe's optional audio recorder would trigger)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("mediapipe")
pytest.importorskip("torch")

import bad_input_fixtures as make  # noqa: E402
from real_media import TALKING_HEAD  # noqa: E402

# The child records every process it starts (Python's audit events), then runs the CLI.
CHILD = """
import json, sys
started = []
sys.addaudithook(lambda event, args: started.append(str(args[1] if event == "subprocess.Popen" else args[0]))
                 if event in ("subprocess.Popen", "os.posix_spawn", "os.exec", "os.system") else None)
from lattice_talk.cli import main
code = main(sys.argv[2:])
open(sys.argv[1], "w").write(json.dumps({"code": code, "started": started}))
"""


def test_a_video_run_writes_only_its_output_and_starts_no_compiler(tmp_path):
    home, work, temp = tmp_path / "home", tmp_path / "work", tmp_path / "temp"
    for folder in (home, work, temp):
        folder.mkdir()
    audio = make.wav(work / "line.wav", make.speech_like(2.0))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "MPLCONFIGDIR"))}
    env.update(HOME=str(home), TMPDIR=str(temp))
    report = temp / "report.json"
    subprocess.run([sys.executable, "-c", CHILD, str(report), "generate", str(audio), "--video", str(TALKING_HEAD),
                    "--out", str(work / "take.npz"), "--quiet"], cwd=work, env=env, check=True, timeout=300)
    result = json.loads(report.read_text())
    assert result["code"] == 0
    assert sorted(p.name for p in work.iterdir()) == ["line.wav", "take.npz"]
    assert [str(p.relative_to(home)) for p in home.rglob("*")] == []
    compilers = [c for c in result["started"] if any(tool in c for tool in ("gcc", "'ld'", "ldconfig", "'cc'"))]
    assert compilers == []
