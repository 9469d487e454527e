"""Benchmarks: ``python -m lattice_talk bench NAME`` prints a table and writes JSON.

Speed targets live here, never in unit tests. Ratios are measured side by side in one run."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np


def _best_of(fn: Callable[[], object], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_head() -> list[dict]:
    """Default-head load time (fresh process and warm) and LBS cost/agreement, numpy vs torch."""
    from .core.heads import create

    rows = []
    code = ("import time; t=time.perf_counter(); from lattice_talk.core.heads import create; create(); "
            "print(time.perf_counter()-t)")
    fresh = [float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout) for _ in range(3)]
    rows.append({"metric": "default head load, fresh process (imports + read)", "value": min(fresh), "unit": "s", "target": "< 0.2"})
    rows.append({"metric": "default head load, warm", "value": _best_of(create), "unit": "s", "target": "< 0.2"})

    head = create()
    rng = np.random.default_rng(0)
    batch = 100
    params = {
        "betas": rng.normal(0, 0.3, (batch, head.n_shape)).astype(np.float32),
        "expression": rng.uniform(0, 1, (batch, head.n_expression)).astype(np.float32),
        "pose": rng.normal(0, 0.2, (batch, 5, 3)).astype(np.float32),
        "translation": rng.normal(0, 0.05, (batch, 3)).astype(np.float32),
    }
    result_np = head.forward(**params)
    rows.append({"metric": f"LBS numpy, {batch} frames", "value": _best_of(lambda: head.forward(**params), 3), "unit": "s", "target": ""})
    try:
        import torch
    except ImportError:
        return rows
    torch.set_num_threads(2)
    params_t = {k: torch.from_numpy(v) for k, v in params.items()}
    with torch.no_grad():
        result_t = head.forward(**params_t)
        rows.append({"metric": f"LBS torch, {batch} frames", "value": _best_of(lambda: head.forward(**params_t), 3), "unit": "s", "target": ""})
    diff = float(np.abs(result_np.vertices - result_t.vertices.numpy()).max())
    rows.append({"metric": "LBS numpy vs torch, max |Δ| over vertices", "value": diff, "unit": "m", "target": "≤ 1e-5"})
    return rows


BENCHMARKS: dict[str, Callable[[], list[dict]]] = {"head": bench_head}


def run_benchmark(name: str, json_path: Path | None) -> list[dict]:
    rows = BENCHMARKS[name]()
    width = max(len(r["metric"]) for r in rows)
    print(f"{'metric':<{width}}  {'value':>12}  unit  target")
    for r in rows:
        print(f"{r['metric']:<{width}}  {r['value']:>12.4g}  {r['unit']:<4}  {r['target']}")
    json_path = json_path or Path("out") / f"bench_{name}.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    machine = {"python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count()}
    json_path.write_text(json.dumps({"benchmark": name, "machine": machine, "rows": rows}, indent=2))
    print(f"wrote {json_path}")
    return rows
