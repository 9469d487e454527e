"""Render-farm scale: a ``generate`` batch on a Dask distributed cluster (``generate … --scheduler ADDRESS``).

The client plans the batch exactly as on one machine (cli.generate._generate_jobs), sends one task per line and
keeps the account itself (core.batch.BatchRecord: ``manifest.json`` and ``batch.log`` as results arrive). A worker
runs the very code a one-machine batch runs for an item (core.batch.run_item around generate_line._generate_one), so
the re-run rule, the outputs and their atomic writes are the same; each line travels by path, so inputs and ``--out``
must be on storage every worker sees under the same name.

Dask is imported inside functions only: a one-machine ``generate`` never loads it. The studio starts the workers
(``dask worker ADDRESS --nthreads 1 --preload lattice_talk.farm``): one task at a time per process, because Blender's
Python is not thread-safe, and the preload loads Blender and the default models once per worker.
"""

from __future__ import annotations

import argparse
import io
import logging
import os
from contextlib import ExitStack, contextmanager, redirect_stderr, redirect_stdout
from dataclasses import asdict, fields
from pathlib import Path
from typing import Iterator

from .core.errors import LatticeTalkError

EXIT_FARM_LOST, EXIT_CANCELLED = 3, 130  # beside the CLI's 0, 1 and 2; 130 is what a shell reports for Ctrl-C
WORKER_WAIT_S = 60.0  # how long a batch waits for a first worker to join the scheduler
CONNECT_TIMEOUT_S = 10.0
ARGUMENT_PATHS = ("video", "video_model", "speech_model", "embedding", "render")  # options naming files or folders
# What a preloaded worker loads before its first task: the models of a plain `generate` (see _loaded).
PRELOAD_RUN = argparse.Namespace(pipeline=None, speech_model=None, device="cpu", head="default", embedding=None,
                                 video=None, video_model=None)

_loaded_models: dict[tuple, tuple] = {}  # on a worker: its models per run kind, loaded once per process
_blender_thread: list[int] = []  # on a worker: the one thread that may use Blender (the first to run a line)


class FarmStopped(LatticeTalkError):
    """The batch stopped before every line was run: the scheduler was lost, or the user pressed Ctrl-C."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def check_scheduler(spec: str) -> str:
    """``local``, ``local:N``, ``tcp://HOST:PORT`` or ``tls://HOST:PORT``; anything else is refused before any work."""
    spec = spec.strip()
    if spec == "local" or spec.startswith("local:"):
        count = spec.partition(":")[2]
        if count and not (count.isdigit() and int(count) >= 1):
            raise LatticeTalkError(f"--scheduler {spec}: local:N needs a whole number of worker processes, 1 or more")
        return spec
    scheme, _, rest = spec.partition("://")
    if scheme not in ("tcp", "tls") or not rest:
        raise LatticeTalkError(f"--scheduler {spec}: give a Dask scheduler address, tcp://HOST:8786 or tls://HOST:8786 "
                               "(with Dask's TLS settings), or local[:N] for worker processes on this machine")
    return spec


# ------------------------------------------------------------------------------------------ client
def run_on_farm(scheduler: str, args: argparse.Namespace, jobs, record, item_finished, bar) -> None:
    """Run ``jobs`` on the cluster and record each item as its result arrives (``record``: core.batch.BatchRecord;
    ``item_finished``: what the command tells about an item). Raises FarmStopped when the scheduler is lost or the
    user presses Ctrl-C: finished outputs and the manifest stay, and the same command continues the batch."""
    from concurrent.futures import CancelledError

    from distributed import KilledWorker

    from .core.version import __version__

    expected = {"version": __version__, "model": jobs.model}
    worker_args = _for_workers(args)
    with ExitStack() as stack:
        if not args.verbose:  # the batch's own lines say what happened; Dask's log lines (a lost connection) add noise
            stack.enter_context(_quiet_logger("distributed"))
        client = _connect(scheduler, stack)
        futures = {}
        try:
            bar.set_description_str("waiting for workers")
            _refuse_other_workers(client, worker_args, expected)
            bar.set_description_str(f"{len(client.nthreads())} workers")
            for item in jobs.items:
                line = dict(asdict(item), input=str(Path(item.input).absolute()), output=str(Path(item.output).absolute()))
                futures[client.submit(run_line, worker_args, line, expected, pure=False)] = item
            for future in _as_completed(client, futures, jobs):
                item = futures[future]
                try:
                    result, item.attempts = _outcome(client, future)
                except (CancelledError, OSError):  # the scheduler went, with the lines it held
                    raise _lost(client, jobs) from None
                if isinstance(result, KilledWorker):  # Dask gave the line to workers that died, too often
                    item.status = "failed"
                    item.error = (f"the workers running it died {item.attempts} times (killed, out of memory or crashed: "
                                  f"see their logs); Dask gave up on it ({result})")
                    files, said = [], ("", "")
                else:
                    for name in ("status", "note", "error", "seconds", "worker"):
                        setattr(item, name, result["item"][name])
                    files, said = [Path(f) for f in result["files"]], (result["stdout"], result["stderr"])
                    if record.log is not None:
                        for line in result["log"]:
                            record.log(line)
                future.release()
                record.finished(item)
                item_finished(item, files, said)
                bar.set_description_str(f"{Path(item.input).name}: {item.status}")
        except KeyboardInterrupt:
            client.cancel(list(futures))
            raise _stopped(jobs, "cancelled (Ctrl-C)", EXIT_CANCELLED) from None
    if not jobs.batch and jobs.items[0].status == "failed":  # one file: its failure is the command's error, as here
        raise LatticeTalkError(jobs.items[0].error)


@contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _as_completed(client, futures, jobs):
    """``futures`` as they finish. A cluster left without workers keeps its lines queued for ever; after
    WORKER_WAIT_S without one the batch stops, as when the scheduler is lost."""
    import time

    from distributed import as_completed

    finished = as_completed(futures)
    seen_workers = time.monotonic()
    while not finished.is_empty():
        if finished.has_ready():
            yield from finished.next_batch(block=False)
            continue
        time.sleep(0.02)
        if time.monotonic() - seen_workers > 1.0:
            try:
                workers = client.nthreads()
            except OSError:
                raise _lost(client, jobs) from None
            if workers:
                seen_workers = time.monotonic()
            elif time.monotonic() - seen_workers > WORKER_WAIT_S:
                raise _stopped(jobs, f"no worker left on the Dask scheduler at {client.scheduler.address} for "
                                     f"{WORKER_WAIT_S:.0f} s", EXIT_FARM_LOST)


def _connect(scheduler: str, stack: ExitStack):
    """A client of the scheduler at ``scheduler``, or of a new local cluster (``local[:N]``), closed with ``stack``."""
    from distributed import Client, LocalCluster

    if scheduler.startswith("local"):
        count = int(scheduler.partition(":")[2] or os.cpu_count() or 1)
        # Only this machine can reach it (127.0.0.1): Dask runs whatever code its clients send.
        cluster = stack.enter_context(LocalCluster(n_workers=count, threads_per_worker=1, processes=True,
                                                   host="127.0.0.1", dashboard_address="127.0.0.1:0",
                                                   preload=["lattice_talk.farm"], silence_logs=50))
        return stack.enter_context(Client(cluster))
    if scheduler.startswith("tls://"):
        from distributed.security import Security

        security = Security()  # Dask's TLS settings, from its configuration or DASK_DISTRIBUTED__COMM__TLS__* variables
        if not (security.tls_ca_file and security.tls_client_cert and security.tls_client_key):
            raise LatticeTalkError(f"--scheduler {scheduler}: Dask's TLS settings are missing; set "
                                   "DASK_DISTRIBUTED__COMM__TLS__CA_FILE, DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT and "
                                   "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY (README 'Render farm')")
    try:
        return stack.enter_context(Client(scheduler, timeout=CONNECT_TIMEOUT_S))
    except (OSError, TimeoutError) as exc:
        raise LatticeTalkError(f"--scheduler {scheduler}: cannot reach a Dask scheduler there ({exc}); start one with "
                               "'dask scheduler' or check the address (README 'Render farm')") from exc


def _refuse_other_workers(client, worker_args: argparse.Namespace, expected: dict) -> None:
    """Every worker must run this LatticeTalk version with these very models, or its takes would differ from a
    one-machine batch's: a batch refuses a cluster with any other worker, naming it."""
    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_S)
    except TimeoutError as exc:
        raise LatticeTalkError(f"no worker joined the Dask scheduler at {client.scheduler.address} within "
                               f"{WORKER_WAIT_S:.0f} s; start them with 'dask worker {client.scheduler.address} "
                               "--nthreads 1 --preload lattice_talk.farm'") from exc
    try:
        identities = client.run(worker_identity, worker_args)
    except LatticeTalkError:
        raise
    except Exception as exc:  # the worker cannot unpickle or run LatticeTalk's code at all
        raise LatticeTalkError(f"a Dask worker cannot run LatticeTalk ({exc!r}); install the same LatticeTalk, with "
                               "its farm extra and models, on every worker") from exc
    refused = [f"{address}: {why}" for address, identity in sorted(identities.items())
               if (why := _difference(identity, expected))]
    if refused:
        raise LatticeTalkError("refused, these workers differ from this client: " + "; ".join(refused)
                               + ". Install the same LatticeTalk and models on every worker, or stop those workers")


def _difference(worker: dict, client: dict) -> str | None:
    """None when ``worker`` runs what ``client`` runs; otherwise how it differs."""
    if worker["version"] != client["version"]:
        return f"LatticeTalk {worker['version']}, this client runs {client['version']}"
    if worker["model"] != client["model"]:
        return f"models {worker['model']}, this client's are {client['model']}"
    return None


def _outcome(client, future) -> tuple:
    """(the line's result, or Dask's KilledWorker when it gave up on it; how many workers were given it)."""
    from distributed import KilledWorker

    try:
        result = future.result()
    except KilledWorker as exc:
        result = exc
    return result, _attempts(client, future.key)


def _lost(client, jobs) -> FarmStopped:
    return _stopped(jobs, f"lost the Dask scheduler at {client.scheduler.address}", EXIT_FARM_LOST)


def _attempts(client, key) -> int:
    """How many workers were given the line: 1, plus one for each that died with it (Dask's own count)."""
    def suspicious(dask_scheduler, key):  # runs on the scheduler, which need not have LatticeTalk installed
        task = dask_scheduler.tasks.get(key)
        return 0 if task is None else task.suspicious

    return 1 + client.run_on_scheduler(suspicious, key=key)


def _stopped(jobs, why: str, exit_code: int) -> FarmStopped:
    finished = sum(i.status != "pending" for i in jobs.items)
    where = f" (manifest {jobs.manifest})" if jobs.manifest else ""
    return FarmStopped(f"{why}: {finished} of {len(jobs.items)} lines finished and are kept{where}; run the same "
                       "command again to continue with the rest", exit_code)


def _for_workers(args: argparse.Namespace) -> argparse.Namespace:
    """The command's options as a worker needs them: file options as absolute paths (a worker has its own current
    folder), and nothing of the command itself."""
    portable = argparse.Namespace(**{k: v for k, v in vars(args).items() if k != "func"})
    for name in ARGUMENT_PATHS:
        if getattr(portable, name):
            setattr(portable, name, str(Path(getattr(portable, name)).absolute()))
    if portable.head != "default":
        portable.head = str(Path(portable.head).absolute())
    return portable


# ------------------------------------------------------------------------------------------ worker
def worker_identity(args: argparse.Namespace) -> dict:
    """What this worker would make ``args``' takes with: its LatticeTalk version and its models' identity."""
    from .core.version import __version__

    return {"version": __version__, "model": _loaded(args)[2]}


def run_line(args: argparse.Namespace, line: dict, expected: dict) -> dict:
    """One line on a worker: the one-machine batch's run of an item, with what it printed captured for the client.
    Failures come back in the item (bad input is not retried); only a dying worker makes Dask run it again."""
    from distributed import get_worker

    from .generate_line import _generate_one
    from .core.version import __version__
    from .core import console
    from .core.batch import BatchItem, run_item

    item = BatchItem(**{f.name: line[f.name] for f in fields(BatchItem)})
    files: list[Path] = []
    log: list[str] = []

    def work(item: BatchItem) -> str:
        _worker_ready()
        pipeline, head, model = _loaded(args)
        why = _difference({"version": __version__, "model": model}, expected)
        if why:
            raise LatticeTalkError(f"refused on worker {get_worker().address}: it runs {why}; install the same "
                                   "LatticeTalk and models on every worker")
        status, written = _generate_one(args, pipeline, head, model, item, lambda stage, fraction: None)
        files.extend(written)
        return status

    said_out, said_err = io.StringIO(), io.StringIO()
    # The command's own lines are captured for the client; what Blender prints goes nowhere (unless --verbose).
    with redirect_stdout(said_out), redirect_stderr(said_err), \
            console.third_party_output_silenced(active=not args.verbose):
        run_item(item, work, log.append)
    item.worker = get_worker().address
    return {"item": asdict(item), "files": [str(f) for f in files], "stdout": said_out.getvalue(),
            "stderr": said_err.getvalue(), "log": log}


def _worker_ready() -> None:
    """Before a worker's first line (or in its preload): this thread becomes its Blender thread, and Dask's malloc
    setting is undone. Later lines check they run on that thread: Blender crashes the process when a second thread
    calls it, even one at a time (a worker started with --nthreads 1 has one)."""
    import threading

    if not _blender_thread:
        _blender_thread.append(threading.get_ident())
        _undo_malloc_trim()
    elif _blender_thread[0] != threading.get_ident():
        raise LatticeTalkError("this Dask worker runs lines on several threads, and Blender's Python is not "
                               "thread-safe: start workers with 'dask worker ADDRESS --nthreads 1'")


def _undo_malloc_trim() -> None:
    """A Dask nanny starts its worker with MALLOC_TRIM_THRESHOLD_=65536, which fixes glibc's thresholds: every large
    array is then mapped and unmapped afresh, and a line runs about 1.7× slower (bench farm). Raising them again
    restores what glibc's adaptive thresholds reach on their own."""
    import ctypes

    if "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: the variable meant nothing here
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's malloc.h
    libc.mallopt(m_mmap_threshold, 32 << 20)  # glibc's largest adaptive mmap threshold on 64 bits
    libc.mallopt(m_trim_threshold, 64 << 20)  # twice it, as glibc's adaptive rule keeps it


def _loaded(args: argparse.Namespace) -> tuple:
    """(pipeline, head, model identity) for ``args``' kind of run, made once per worker process (the pipeline loads
    its models in its first run, or in the preload)."""
    from .cli.common import _head_for
    from .generate_line import _model_identity
    from .core import console
    from .core.device import torch_device
    from .core.pipeline_registry import get_pipeline

    key = (args.pipeline, args.speech_model, args.device, args.head, args.embedding, bool(args.video), args.video_model)
    if key not in _loaded_models:
        device = torch_device(args.device, notice=lambda line: print(line, file=console.stderr()))
        pipeline = get_pipeline(args.pipeline, speech_model=args.speech_model, device=device)
        _loaded_models[key] = (pipeline, _head_for(args), _model_identity(pipeline, args))
    return _loaded_models[key]


def dask_setup(worker) -> None:
    """``dask worker … --preload lattice_talk.farm``: Blender and the default models load as the worker starts,
    once, not in its first line; on the worker's task thread, the one thread Blender will then work on."""
    def warm_up() -> None:
        _worker_ready()
        import bpy  # noqa: F401  (Blender's start-up)

        _loaded(PRELOAD_RUN)[0].prepare()

    worker.executors["default"].submit(warm_up).result()
