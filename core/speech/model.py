"""A trained speech model folder at generate time: its files (``decoder.safetensors`` + ``decoder.json``), loading
them checked, the decoder's prediction and the lip seal. What training writes and what generating reads meet here;
training itself (``.train``) imports this, never the reverse."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import LatticeTalkError

DECODER_FILE, DECODER_CONFIG = "decoder.safetensors", "decoder.json"
BILABIAL_FILE, BILABIAL_CONFIG = "bilabial.safetensors", "bilabial.json"  # the optional p/b/m detector (.bilabial)
OPENING_FILE, OPENING_CONFIG = "opening.safetensors", "opening.json"  # the optional mouth-opening head (.opening)


def load_weights(module, weights: Path, config_name: str, fix: str):
    """``module`` (built from its config ``config_name``) with the safetensors ``weights`` (fp16 on disk, fp32 in
    memory), in eval mode; one error naming the file when it is damaged or does not fit the config."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        module.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()})
    except (OSError, SafetensorError, RuntimeError) as exc:  # RuntimeError: tensors that do not fit the config
        raise LatticeTalkError(f"{weights}: the weights are damaged or do not match {config_name} "
                               f"({str(exc)[:200]}); {fix}") from exc
    return module.eval()


def load_decoder(folder: str | Path):
    """The trained decoder (fp16 weights on disk, fp32 in memory) and its config."""
    from .decoder import MotionDecoder

    folder = Path(folder)
    config = decoder_config(folder)
    model = MotionDecoder(**{k: (tuple(v) if k == "dilations" else v) for k, v in config["model"].items()})
    load_weights(model, folder / DECODER_FILE, DECODER_CONFIG,
                 "copy the model folder again or train one with 'python -m lattice_talk speech train'")
    return model, config


# decoder.json "model" fields → the range a trained decoder can have (a config beyond them is damaged or hostile:
# hidden = 10⁹ would allocate terabytes before the weights are read)
DECODER_LIMITS = {"in_dim": (1, 1 << 16), "n_units": (1, 1024), "hidden": (1, 4096), "n_classes": (0, 1024)}
MAX_DILATION, MAX_BLOCKS = 1024, 64


def decoder_config(folder: Path) -> dict:
    """``decoder.json`` read and checked: the model's sizes in range, one unit name per unit."""
    from ..validate import MAX_CONFIG_BYTES, number, read_json, whole_number

    path = folder / DECODER_CONFIG
    fix = "copy the model folder again or train one with 'python -m lattice_talk speech train'"
    config = read_json(path, "decoder config", MAX_CONFIG_BYTES, fix)
    model = config.get("model") if isinstance(config, dict) else None
    if not isinstance(model, dict) or set(model) - {*DECODER_LIMITS, "dilations"}:
        raise LatticeTalkError(f"{path}: needs a \"model\" object with {', '.join(DECODER_LIMITS)} and dilations; "
                               f"{fix}")
    for key, (low, high) in DECODER_LIMITS.items():
        if key in model:
            model[key] = whole_number(model[key], f"{path}: model.{key}", low, high, fix)
    dilations = model.get("dilations", [])
    if not isinstance(dilations, list) or not 0 < len(dilations) <= MAX_BLOCKS:
        raise LatticeTalkError(f"{path}: model.dilations must list 1–{MAX_BLOCKS} whole numbers; {fix}")
    model["dilations"] = [whole_number(d, f"{path}: model.dilations", 1, MAX_DILATION, fix) for d in dilations]
    names = config.get("unit_names")
    if not {"in_dim", "n_units"} <= set(model) or not isinstance(names, list) or len(names) != model["n_units"] \
            or not all(isinstance(n, str) for n in names):
        raise LatticeTalkError(f"{path}: needs model.in_dim, model.n_units and one unit name per unit (unit_names); "
                               f"{fix}")
    seal = config.get("seal")
    if seal is not None:
        if not isinstance(seal, dict):
            raise LatticeTalkError(f"{path}: \"seal\" must be an object with \"from\" and \"full\"; {fix}")
        for key in ("from", "full"):
            number(seal.get(key), f"{path}: seal.{key}", 0.0, 1.0, "calibrate again with 'speech calibrate', or " + fix)
    if not isinstance(config.get("encoder", ""), str) or not isinstance(config.get("features", ""), str):
        raise LatticeTalkError(f"{path}: \"features\" and \"encoder\" must be text; {fix}")
    return config


SEAL_DEFAULT = (0.3, 0.7)  # closure probability where sealing starts / is complete (configs without "seal")


def seal_window(config: dict) -> tuple[float, float]:
    """The decoder's calibrated seal window (``decoder.json`` "seal"), or the default for older models."""
    seal = config.get("seal")
    return (float(seal["from"]), float(seal["full"])) if seal else SEAL_DEFAULT


def predict(model, features: np.ndarray, n_frames: int, unit_names: tuple[str, ...],
            seal: tuple[float, float] = SEAL_DEFAULT) -> tuple[np.ndarray, np.ndarray]:
    """(T50, F) features → units (T, U) and jaw (T,) for ``n_frames`` output frames, lips sealed where the
    decoder hears a p/b/m with a probability inside the ``seal`` window (the corpus's own seal, see
    core.mouth.seal_lips)."""
    return apply_seal(*decode(model, features, n_frames), unit_names, seal)


def decode(model, features: np.ndarray, n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decoder's raw output: units (T, U), jaw (T,) and the p/b/m closure probability (T,)."""
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        units, jaw, closure_logit, _ = model(torch.from_numpy(np.asarray(features, np.float32))[None].to(device), n_frames)
    return units[0].cpu().numpy(), jaw[0].cpu().numpy(), torch.sigmoid(closure_logit[0]).cpu().numpy()


def apply_seal(units: np.ndarray, jaw: np.ndarray, closure_probability: np.ndarray, unit_names: tuple[str, ...],
               seal: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Seal the lips in proportion to where ``closure_probability`` lies in the ``seal`` window."""
    from ..mouth import seal_lips

    start, full = seal
    closure = np.clip((closure_probability - start) / max(full - start, 1e-6), 0.0, 1.0)
    return seal_lips(units, jaw, closure, unit_names)


def write_seal(model_dir: str | Path, seal: tuple[float, float], source: str) -> None:
    """Record a calibrated seal window in the model's ``decoder.json`` (``source``: what it was chosen on)."""
    path = Path(model_dir) / DECODER_CONFIG
    config = json.loads(path.read_text())
    config["seal"] = {"from": seal[0], "full": seal[1], "calibrated_on": source}
    path.write_text(json.dumps(config, indent=2))
