"""generate --scheduler: a batch on a real Dask cluster (a scheduler and two single-threaded workers, each its own
process on 127.0.0.1) makes what the one-machine batch makes, loses nothing when a worker dies, fails a bad file
alone, and leaves a manifest that a re-run completes after Ctrl-C or a lost scheduler."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

bpy = pytest.importorskip("bpy", reason="workers write .blend takes with the bpy wheel")
distributed = pytest.importorskip("distributed", reason="the farm extra: pip install -c constraints.txt -e '.[farm]'")

from clip_fixtures import write_wav  # noqa: E402
from lattice_talk.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, SCHEDULER_ENV, main  # noqa: E402
from lattice_talk.farm import EXIT_CANCELLED, EXIT_FARM_LOST  # noqa: E402

pytestmark = pytest.mark.blender
SAMPLE = Path(__file__).resolve().parents[1] / "vendor_models" / "samples" / "hello.wav"
SAMPLE_TEXT = "Hello! My name is Lattice Talk. Bob brought a big bowl of soup for me."


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """A `dask scheduler` and `dask worker --nthreads 1` processes, as a studio starts them (no nanny: a killed
    worker stays dead, as a crashed machine does)."""

    def __init__(self, logs: Path):
        self.logs, self.address = logs, f"tcp://127.0.0.1:{free_port()}"
        self.scheduler = self._start("scheduler", "scheduler", "--host", "127.0.0.1", "--port",
                                     self.address.rsplit(":", 1)[1], "--no-dashboard")
        self.workers: list[subprocess.Popen] = []
        self.client = distributed.Client(self.address, timeout=30)

    def _start(self, name: str, *argv: str) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        return subprocess.Popen([sys.executable, "-m", "dask", *argv], stdout=log, stderr=subprocess.STDOUT)

    def start_workers(self, count: int) -> None:
        for _ in range(count):
            name = f"worker{len(self.workers)}"
            self.workers.append(self._start(name, "worker", self.address, "--nthreads", "1", "--no-nanny", "--host",
                                            "127.0.0.1", "--no-dashboard", "--preload", "lattice_talk.farm", "--name", name))
        self.client.wait_for_workers(sum(w.poll() is None for w in self.workers), timeout=120)

    def worker_pids(self) -> dict[str, int]:
        return self.client.run(os.getpid)

    def stop(self) -> None:
        self.client.close()
        for process in [*self.workers, self.scheduler]:
            if process.poll() is None:
                process.terminate()
        for process in [*self.workers, self.scheduler]:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:  # a worker still calling a scheduler that is gone
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    farm = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        farm.start_workers(2)
        yield farm
    finally:
        farm.stop()


def lines(folder: Path, count: int, seconds: float = 1.0) -> Path:
    """``count`` short generated lines (tones, each its own pitch) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(count):
        write_wav(folder / f"line{k:02d}.wav", seconds=seconds, freq=140.0 + 15.0 * k)
    return folder


def manifest(out: Path) -> list[dict]:
    return json.loads((out / "manifest.json").read_text())["items"]


def clip_arrays(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files if name != "metadata"}


def take_curves(blend: Path) -> dict:
    """Every keyed curve of every action in ``blend``: (action, data path, index) → its keys."""
    bpy.ops.wm.open_mainfile(filepath=str(blend))

    def fcurves(action):
        if hasattr(action, "layers"):
            return [fc for layer in action.layers for strip in layer.strips for bag in strip.channelbags for fc in bag.fcurves]
        return list(action.fcurves)

    curves = {}
    for action in bpy.data.actions:
        for fc in fcurves(action):
            keys = np.zeros(2 * len(fc.keyframe_points), np.float32)
            fc.keyframe_points.foreach_get("co", keys)
            curves[(action.name, fc.data_path, fc.array_index)] = keys
    return curves


def generate(*argv: str) -> int:
    return main(["generate", *argv, "--quiet"])


def client_process(inputs: Path, out: Path, scheduler: str) -> subprocess.Popen:
    """The command in its own process, as a user runs it at a terminal (so it can be interrupted): with Ctrl-C's
    default action even where the tests themselves run with it ignored, as a non-interactive shell's background job
    does (``pytest &``) — Python then never raises KeyboardInterrupt, and the client finishes the batch."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # a caught signal is the default after exec
    try:
        return subprocess.Popen([sys.executable, "-m", "lattice_talk", "generate", str(inputs), "--out", str(out),
                                 "--quiet", "--scheduler", scheduler], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
    finally:
        signal.signal(signal.SIGINT, previous)


def wait_until_done(out: Path, count: int, process: subprocess.Popen, timeout: float = 120.0) -> None:
    """Until ``count`` lines are finished in ``out``'s manifest (read as the client rewrites it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if sum(i["status"] == "done" for i in manifest(out)) >= count:
                return
        except (OSError, ValueError):  # not written yet
            pass
        time.sleep(0.02)
    raise AssertionError(f"{count} lines were not finished in time: {process.poll()}")


def test_a_farm_batch_makes_what_one_machine_makes(cluster, tmp_path):
    inputs = lines(tmp_path / "vo", 4)
    shutil.copy(SAMPLE, inputs / "hello.wav")
    (inputs / "hello.txt").write_text(SAMPLE_TEXT)  # a transcript beside its line travels with it
    assert generate(str(inputs), "--out", str(tmp_path / "one")) == EXIT_OK
    assert generate(str(inputs), "--out", str(tmp_path / "farm"), "--scheduler", cluster.address) == EXIT_OK
    items = manifest(tmp_path / "farm")
    assert [i["status"] for i in items] == ["done"] * 5
    assert {i["worker"] for i in items} <= set(cluster.worker_pids()) and {i["attempts"] for i in items} == {1}
    for wav in inputs.glob("*.wav"):
        one, farm = clip_arrays(tmp_path / "one" / f"{wav.stem}.npz"), clip_arrays(tmp_path / "farm" / f"{wav.stem}.npz")
        assert one.keys() == farm.keys() and all(np.array_equal(one[k], farm[k]) for k in one), wav.name
    # The re-run rule holds on the farm: every output records this run, so nothing is made again.
    assert generate(str(inputs), "--out", str(tmp_path / "farm"), "--scheduler", cluster.address) == EXIT_OK
    assert [i["status"] for i in manifest(tmp_path / "farm")] == ["skipped"] * 5


def test_a_blend_made_on_the_farm_holds_the_same_take(cluster, tmp_path):
    wav = write_wav(tmp_path / "line.wav", seconds=1.0)
    assert generate(str(wav), "--out", str(tmp_path / "one.blend"), "--take", "line") == EXIT_OK
    assert generate(str(wav), "--out", str(tmp_path / "farm.blend"), "--take", "line",
                    "--scheduler", cluster.address) == EXIT_OK
    one, farm = take_curves(tmp_path / "one.blend"), take_curves(tmp_path / "farm.blend")
    assert one and one.keys() == farm.keys() and all(np.array_equal(one[k], farm[k]) for k in one)


def test_a_bad_file_fails_alone_and_is_not_retried(cluster, tmp_path, capsys):
    inputs = lines(tmp_path / "vo", 2)
    (inputs / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    out = tmp_path / "takes"
    assert generate(str(inputs), "--out", str(out), "--scheduler", cluster.address) == EXIT_FAILED
    items = {Path(i["input"]).name: i for i in manifest(out)}
    assert [items[f"line0{k}.wav"]["status"] for k in range(2)] == ["done", "done"]
    assert items["broken.wav"]["status"] == "failed" and items["broken.wav"]["attempts"] == 1
    assert "broken.wav" in items["broken.wav"]["error"] and "broken.wav" in capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.npz")) == ["line00.npz", "line01.npz"]


def test_a_worker_of_another_version_is_refused(cluster, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("lattice_talk.core.version.__version__", "9.9.9")  # this client, not the workers
    out = tmp_path / "takes"
    assert generate(str(lines(tmp_path / "vo", 2)), "--out", str(out), "--scheduler", cluster.address) == EXIT_BAD_INPUT
    said = capsys.readouterr().err
    assert "refused" in said and "LatticeTalk 0.1.0, this client runs 9.9.9" in said
    assert not list(out.glob("*.npz"))


def test_killing_a_worker_mid_batch_loses_nothing(cluster, tmp_path):
    inputs, out = lines(tmp_path / "vo", 12, seconds=3.0), tmp_path / "takes"
    pids = cluster.worker_pids()
    result = {}
    run = threading.Thread(target=lambda: result.update(rc=generate(str(inputs), "--out", str(out),
                                                                    "--scheduler", cluster.address)))
    run.start()
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the first worker seen with a line in hand is killed
            busy = [address for address, keys in cluster.client.processing().items() if keys and address in pids]
            if busy:
                os.kill(pids[busy[0]], signal.SIGKILL)
                break
            time.sleep(0.01)
        else:
            raise AssertionError("no worker took a line")
        run.join(timeout=120)
        assert result["rc"] == EXIT_OK
        items = manifest(out)
        assert [i["status"] for i in items] == ["done"] * 12
        assert sorted(p.name for p in out.glob("*.npz")) == [f"line{k:02d}.npz" for k in range(12)]
        assert max(i["attempts"] for i in items) == 2
        assert len((out / "batch.log").read_text().splitlines()) == 12
    finally:
        cluster.start_workers(1)  # the others' tests keep two workers


def test_ctrl_c_cancels_the_rest_and_a_rerun_completes(cluster, tmp_path):
    inputs, out = lines(tmp_path / "vo", 200, seconds=2.0), tmp_path / "takes"  # 40 once all finished in a stall
    client = client_process(inputs, out, cluster.address)
    wait_until_done(out, 2, client)
    client.send_signal(signal.SIGINT)
    _, err = client.communicate(timeout=60)
    assert client.returncode == EXIT_CANCELLED and "cancelled (Ctrl-C)" in err and "run the same command again" in err, err
    items = manifest(out)
    done = [Path(i["output"]) for i in items if i["status"] == "done"]
    assert len(done) >= 2 and any(i["status"] == "pending" for i in items)
    assert all(clip_arrays(path) for path in done)
    assert generate(str(inputs), "--out", str(out), "--scheduler", cluster.address) == EXIT_OK
    again = {i["output"]: i["status"] for i in manifest(out)}
    assert all(again[str(path)] == "skipped" for path in done) and set(again.values()) <= {"skipped", "done"}


def test_a_lost_scheduler_stops_the_client_and_a_rerun_continues(tmp_path):
    inputs, out = lines(tmp_path / "vo", 40, seconds=2.0), tmp_path / "takes"
    doomed = Cluster(tmp_path)
    try:
        doomed.start_workers(1)
        client = client_process(inputs, out, doomed.address)
        wait_until_done(out, 1, client)
        doomed.scheduler.kill()
        _, err = client.communicate(timeout=60)
    finally:
        doomed.stop()
    assert client.returncode == EXIT_FARM_LOST and f"lost the Dask scheduler at {doomed.address}" in err, err
    finished = [i["output"] for i in manifest(out) if i["status"] == "done"]
    assert finished and len(finished) < 40
    # Again on a cluster of this machine's own (local:N): the finished lines are kept (so is a line a worker
    # finished as the scheduler went, which the manifest never heard of: its output records this run), the rest made.
    assert generate(str(inputs), "--out", str(out), "--scheduler", "local:1") == EXIT_OK
    again = {i["output"]: i["status"] for i in manifest(out)}
    assert all(again[path] == "skipped" for path in finished) and set(again.values()) == {"skipped", "done"}


def test_an_unusable_scheduler_option_is_one_clear_error(tmp_path, capsys, monkeypatch):
    wav = write_wav(tmp_path / "line.wav")
    monkeypatch.setenv(SCHEDULER_ENV, "udp://somewhere")
    assert generate(str(wav), "--out", str(tmp_path / "line.npz")) == EXIT_BAD_INPUT
    assert "--scheduler udp://somewhere: give a Dask scheduler address" in capsys.readouterr().err
    assert generate(str(wav), "--out", str(tmp_path / "line.npz"), "--scheduler", "local:0") == EXIT_BAD_INPUT
    assert "local:N needs a whole number" in capsys.readouterr().err
    monkeypatch.delenv("DASK_DISTRIBUTED__COMM__TLS__CA_FILE", raising=False)
    assert generate(str(wav), "--out", str(tmp_path / "line.npz"), "--scheduler", "tls://127.0.0.1:1") == EXIT_BAD_INPUT
    assert "Dask's TLS settings are missing" in capsys.readouterr().err


def test_generate_on_one_machine_imports_no_dask(tmp_path):
    wav = write_wav(tmp_path / "line.wav")
    code = ("import sys; from lattice_talk.cli import main; rc = main(sys.argv[1:]); "
            "print(rc, sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed')))")
    env = {k: v for k, v in os.environ.items() if k != SCHEDULER_ENV}
    said = subprocess.run([sys.executable, "-c", code, "generate", str(wav), "--out", str(tmp_path / "line.npz"), "--quiet"],
                          capture_output=True, text=True, check=True, env=env).stdout
    assert said.splitlines()[-1] == "0 []"
