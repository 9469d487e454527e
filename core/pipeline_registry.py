"""Which pipeline turns a request into a take: the registered ones, plus the speech model (shipped, or a trained
folder) when its weights are installed. Kept apart from the pipeline interface (:mod:`.pipeline`) so the speech
pipeline, which implements that interface, is imported only here and only when chosen."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .errors import LatticeTalkError
from .pipeline import Pipeline

_FACTORIES: dict[str, Callable[[], Pipeline]] = {}


def register_pipeline(name: str, factory: Callable[[], Pipeline]) -> None:
    _FACTORIES[name] = factory


def unregister_pipeline(name: str) -> None:
    _FACTORIES.pop(name, None)


def _factories(speech_model: Path | None = None, threads: int | None = None,
               device: str = "cpu") -> dict[str, Callable[[], Pipeline]]:
    """Registered pipelines, plus the speech model (the shipped one, or ``speech_model``) when its weights are
    there (checked each time: a cheap file test, and nothing heavy is imported until the pipeline is prepared)."""
    from .speech.pipeline import MODEL_DIR, SpeechPipeline, weights_installed

    model_dir = Path(speech_model) if speech_model is not None else MODEL_DIR
    builtin: dict[str, Callable[[], Pipeline]] = {}
    if weights_installed(model_dir):
        builtin["speech"] = lambda: SpeechPipeline(model_dir, threads=threads, device=device)
    return {**builtin, **_FACTORIES}


def available_pipelines() -> list[str]:
    return sorted(_FACTORIES)


def get_pipeline(name: str | None = None, speech_model: str | Path | None = None, threads: int | None = None,
                 device: str = "cpu") -> Pipeline:
    """The named pipeline (default: the only or ``"speech"`` one). ``speech_model``: a folder made by
    ``speech train`` instead of the shipped model; ``threads``: torch CPU threads for it; ``device``: the torch
    device its models run on (see core.device.torch_device)."""
    if speech_model is not None and name in (None, "speech"):
        from .speech.pipeline import weights_installed

        if not weights_installed(Path(speech_model)):
            raise LatticeTalkError(f"{speech_model}: no trained speech model there (decoder.safetensors + decoder.json); "
                                   "pass a folder made by 'python -m lattice_talk speech train'")
    factories = _factories(speech_model, threads, device)
    if not factories:
        raise LatticeTalkError(
            "no speech model is installed in this build of LatticeTalk, so audio cannot be turned into "
            "animation yet; clips made elsewhere can still be applied with Apply Clip / 'python -m lattice_talk apply'"
        )
    if name is None:
        name = "speech" if "speech" in factories else next(iter(sorted(factories)))
    if name not in factories:
        raise LatticeTalkError(f"unknown pipeline {name!r}; available: {', '.join(sorted(factories))}")
    return factories[name]()
