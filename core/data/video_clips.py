"""Ground-truth video clips without a lab: plan what the default head does and how it is filmed.

``plan_video_clip(seed, kind)`` returns an :class:`AnimationClip` of the default head (52 ARKit units,
head rotation and translation, eye gaze, blinks) and the :class:`RenderConditions` it is rendered under
(lighting, camera distance, skin tone, background, sensor noise). ``scene.video_render`` turns the pair
into a video; the clip saved next to it is the ground truth. Everything is numpy and deterministic by seed.

Conventions (the clip's, see ``core.clip``): ``global_rotation`` is axis-angle in the head's frame
(+X the subject's left, +Y up, +Z out of the face), composed as R = Ry(yaw)·Rx(pitch)·Rz(roll): positive
yaw turns the face towards the subject's left, positive pitch tilts it down, positive roll lifts the subject's
left side (the head leans towards the right shoulder). The camera looks straight at the face along −Z
(head frame), so these are also the camera-relative angles (up to the small perspective of an
off-centre face).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from ..clip import AnimationClip

FPS = 30.0
WIDTH, HEIGHT = 640, 480
HEAD_ID = "lattice_talk:default_head"
KINDS = ("expression", "mix", "pose")
MAX_HEAD_DEG = 30.0

# The 7 basic classes as ARKit-unit recipes (apex values). FACS action units → ARKit units:
# AU1 browInnerUp, AU2 browOuterUp*, AU4 browDown*, AU5 eyeWide*, AU6 cheekSquint*, AU7 eyeSquint*,
# AU9 noseSneer*, AU10 mouthUpperUp*, AU12 mouthSmile*, AU15 mouthFrown*, AU16 mouthLowerDown*,
# AU17 mouthShrugLower, AU20 mouthStretch*, AU23/24 mouthPress*, AU26 jawOpen (* = Left and Right).
EXPRESSION_CLASSES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger")
_PAIRED = "*"  # a recipe key ending in * stands for its Left and Right units
CLASS_RECIPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"mouthSmile*": 0.85, "cheekSquint*": 0.5, "eyeSquint*": 0.25, "mouthDimple*": 0.2, "jawOpen": 0.08},
    "sad": {"browInnerUp": 0.75, "browDown*": 0.25, "mouthFrown*": 0.7, "mouthShrugLower": 0.45,
            "mouthPress*": 0.2, "eyeSquint*": 0.15},
    "surprise": {"browInnerUp": 0.8, "browOuterUp*": 0.85, "eyeWide*": 0.8, "jawOpen": 0.45, "mouthFunnel": 0.15},
    "fear": {"browInnerUp": 0.85, "browOuterUp*": 0.35, "browDown*": 0.3, "eyeWide*": 0.75,
             "mouthStretch*": 0.6, "jawOpen": 0.2},
    "disgust": {"noseSneer*": 0.8, "mouthUpperUp*": 0.55, "browDown*": 0.4, "cheekSquint*": 0.3,
                "mouthFrown*": 0.25, "mouthShrugLower": 0.3},
    "anger": {"browDown*": 0.9, "eyeSquint*": 0.45, "mouthPress*": 0.55, "noseSneer*": 0.25, "mouthRollLower": 0.2},
}
BLINK_UNITS = ("eyeBlinkLeft", "eyeBlinkRight")
# Units a random mix may use: everything but gaze (the eye bones carry it) and blinks (the blink track does).
_MIX_EXCLUDED_PREFIXES = ("eyeLook", "eyeBlink")


def expression_unit_names() -> tuple[str, ...]:
    """The default head's 52 ARKit unit names, in its basis order (read from the shipped head file)."""
    from ..heads import create

    return create("default").expression_names


# ------------------------------------------------------------------------------------------ lighting

# Named lightings; scene.video_render maps each to renderer settings. "studio" is the reference.
LIGHTINGS = ("studio", "key_left", "key_right", "outdoor", "soft", "dim", "bright", "top")


SKIN_RGB = (0.8, 0.6, 0.5)  # the reference skin tone; sampled tones scale it
BROW_RGB = (0.12, 0.08, 0.05)  # eyebrows painted on the skin
LIP_RGB = (0.55, 0.25, 0.25)  # lips of the reference skin tone (other tones scale it alike)


@dataclass
class RenderConditions:
    """How a clip is filmed. Lengths in metres, angles in degrees, colours linear RGB 0–1."""

    seed: int
    lighting: str = "studio"
    light_rotation_deg: float = 0.0  # extra turn of the lighting about the vertical axis
    exposure: float = 0.0  # stops
    camera_distance: float = 0.65  # from the lens to the face (between the eyes)
    camera_offset: tuple[float, float] = (0.0, 0.0)  # face off the image centre: camera shifted in x, z
    lens_mm: float = 50.0  # 36 mm sensor width
    skin_rgb: tuple[float, float, float] = SKIN_RGB
    background_rgb: tuple[float, float, float] = (0.05, 0.05, 0.06)
    brow_rgb: tuple[float, float, float] = BROW_RGB
    lip_rgb: tuple[float, float, float] = LIP_RGB
    noise_sigma: float = 0.0  # Gaussian sensor noise, in 8-bit grey levels
    width: int = WIDTH
    height: int = HEIGHT
    fps: float = FPS

    def __post_init__(self) -> None:
        if self.lighting not in LIGHTINGS:
            raise ValueError(f"unknown lighting {self.lighting!r}; use one of {', '.join(LIGHTINGS)}")
        self.camera_offset = tuple(float(v) for v in self.camera_offset)
        self.skin_rgb = tuple(float(v) for v in self.skin_rgb)
        self.background_rgb = tuple(float(v) for v in self.background_rgb)
        self.brow_rgb = tuple(float(v) for v in self.brow_rgb)
        self.lip_rgb = tuple(float(v) for v in self.lip_rgb)

    def to_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RenderConditions:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def relit(self, lighting: str, light_rotation_deg: float = 0.0, exposure: float = 0.0) -> RenderConditions:
        """The same shot under another lighting (the lighting-change pair); everything else is kept."""
        return replace(self, lighting=lighting, light_rotation_deg=light_rotation_deg, exposure=exposure)


FACE_HEIGHT_M = 0.13  # brow to chin of the default head, roughly
SENSOR_HEIGHT_MM = 27.0  # 36 mm wide sensor at 4:3


def camera_distance_for(face_fraction: float, lens_mm: float, height_mm: float = SENSOR_HEIGHT_MM) -> float:
    """Distance (m) at which the face spans ``face_fraction`` of the image height."""
    return FACE_HEIGHT_M * lens_mm / (height_mm * face_fraction)


def sample_conditions(rng: np.random.Generator, seed: int) -> RenderConditions:
    """Random but plausible filming conditions: a webcam-like distance, some light, some noise."""
    lighting = str(rng.choice(LIGHTINGS))
    lens_mm = float(rng.uniform(35, 60))
    skin = np.array(SKIN_RGB) * rng.uniform(0.55, 1.1) + rng.normal(0, 0.03, 3)
    grey = rng.uniform(0.02, 0.35)
    # Face colours from their own stream, so the other draws (and every clip planned after them) stay as they were.
    paint = np.random.default_rng([int(seed), 0xFACE])
    brow = np.array(BROW_RGB) * paint.uniform(0.3, 1.6)
    lip = np.array(LIP_RGB) * paint.uniform(0.8, 1.3) + paint.normal(0, 0.03, 3)
    return RenderConditions(
        seed=seed,
        lighting=lighting,
        light_rotation_deg=float(rng.uniform(-40, 40)),
        exposure=float(rng.uniform(-0.5, 0.4)),
        camera_distance=camera_distance_for(face_fraction=float(rng.uniform(0.2, 0.42)), lens_mm=lens_mm),
        camera_offset=tuple(rng.uniform(-0.03, 0.03, 2).round(4)),
        lens_mm=lens_mm,
        skin_rgb=tuple(np.clip(skin, 0.05, 1.0).round(4)),
        background_rgb=tuple(np.clip(grey + rng.normal(0, 0.03, 3), 0, 1).round(4)),
        brow_rgb=tuple(np.clip(brow, 0.0, 1.0).round(4)),
        lip_rgb=tuple(np.clip(lip, 0.05, 1.0).round(4)),
        noise_sigma=float(rng.choice([0.0, rng.uniform(1, 8)], p=[0.3, 0.7])),
    )


def other_lighting(conditions: RenderConditions, rng: np.random.Generator) -> RenderConditions:
    """The lighting-change partner: a different named lighting, rotation and exposure."""
    choices = [name for name in LIGHTINGS if name != conditions.lighting]
    return conditions.relit(str(rng.choice(choices)), float(rng.uniform(-40, 40)), float(rng.uniform(-0.5, 0.4)))


# ------------------------------------------------------------------------------------------ motion


def class_vector(label: str, names: tuple[str, ...]) -> np.ndarray:
    """A class recipe as a unit vector over ``names`` (0 for units the recipe leaves alone)."""
    if label not in CLASS_RECIPES:
        raise ValueError(f"unknown expression class {label!r}; use one of {', '.join(EXPRESSION_CLASSES)}")
    vec = np.zeros(len(names), np.float32)
    index = {n: i for i, n in enumerate(names)}
    for key, value in CLASS_RECIPES[label].items():
        units = [key[:-1] + "Left", key[:-1] + "Right"] if key.endswith(_PAIRED) else [key]
        for unit in units:
            vec[index[unit]] = value
    return vec


def euler_to_axis_angle(pitch: np.ndarray, yaw: np.ndarray, roll: np.ndarray) -> np.ndarray:
    """Angles in radians (T,) → (T, 3) axis-angle of R = Ry(yaw)·Rx(pitch)·Rz(roll)."""
    from scipy.spatial.transform import Rotation  # intrinsic "YXZ" is that product

    return Rotation.from_euler("YXZ", np.stack([yaw, pitch, roll], axis=-1)).as_rotvec()


def smooth_track(rng: np.random.Generator, n_frames: int, amplitude: float, knot_every: tuple[int, int] = (12, 30)) -> np.ndarray:
    """A smooth random curve in [-amplitude, amplitude]: random knots, cosine-eased between them."""
    knots = [0]
    while knots[-1] < n_frames - 1:
        knots.append(knots[-1] + int(rng.integers(*knot_every)))
    values = rng.uniform(-amplitude, amplitude, len(knots))
    t = np.arange(n_frames)
    seg = np.clip(np.searchsorted(knots, t, side="right") - 1, 0, len(knots) - 2)
    u = (t - np.take(knots, seg)) / np.diff(knots)[seg]
    ease = (1 - np.cos(np.pi * u)) / 2
    return values[seg] * (1 - ease) + values[seg + 1] * ease


def blink_track(rng: np.random.Generator, n_frames: int, fps: float, rate_hz: float) -> tuple[np.ndarray, list[int]]:
    """Blinks at random times (Poisson, at least 0.4 s apart): 2–3 frames closing, 3–6 opening.
    Returns the 0..1 closure track and the frames where each blink is fully closed."""
    track = np.zeros(n_frames, np.float32)
    apexes: list[int] = []
    t = float(rng.exponential(1.0 / rate_hz)) if rate_hz > 0 else math.inf
    while t * fps < n_frames:
        apex = int(t * fps)
        close, open_ = int(rng.integers(2, 4)), int(rng.integers(3, 7))
        depth = float(rng.uniform(0.85, 1.0))
        for f in range(apex - close, apex + open_ + 1):
            if 0 <= f < n_frames:
                s = 1 - (apex - f) / close if f <= apex else 1 - (f - apex) / (open_ + 1)
                track[f] = max(track[f], depth * s)
        apexes.append(apex)
        t += 0.4 + float(rng.exponential(1.0 / rate_hz))
    return track, apexes


def _envelope(rng: np.random.Generator, n_frames: int) -> tuple[np.ndarray, int, int]:
    """Neutral → apex (smoothstep onset in the first half), then held with a little drift."""
    start = int(rng.integers(0, max(1, n_frames // 4)))
    rise = int(rng.integers(4, max(5, n_frames // 4)))
    t = np.clip((np.arange(n_frames) - start) / rise, 0, 1)
    env = t * t * (3 - 2 * t)
    return env * (1 + 0.08 * smooth_track(rng, n_frames, 1.0)), start, start + rise


@dataclass
class VideoClipPlan:
    """What one corpus entry is: its clip, conditions, label and the facts a benchmark needs."""

    index: int
    seed: int
    kind: str
    split: str
    clip: AnimationClip
    conditions: RenderConditions
    label: str | None
    info: dict[str, Any] = field(default_factory=dict)


def plan_video_clip(seed: int, kind: str = "expression", n_frames: int = 60, label: str | None = None,
                    names: tuple[str, ...] | None = None) -> tuple[AnimationClip, RenderConditions]:
    """One ground-truth clip and its filming conditions, deterministic in ``seed``.

    ``kind``: ``"expression"`` (one of :data:`EXPRESSION_CLASSES`, random if ``label`` is None, with random
    intensity, per-unit and left/right variation and a few stray units; head turns up to ±15°),
    ``"mix"`` (random mixes of units changing over time; head up to ±15°) or ``"pose"`` (head rotations up
    to ±30° about each axis, light random expression). All kinds blink and move their eyes. The class label,
    onset and blink frames are in ``clip.provenance["video_clip"]``."""
    if kind not in KINDS:
        raise ValueError(f"unknown clip kind {kind!r}; use one of {', '.join(KINDS)}")
    if n_frames < 2:
        raise ValueError(f"a video clip needs at least 2 frames, got {n_frames}")
    names = names or expression_unit_names()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), KINDS.index(kind)]))
    index = {n: i for i, n in enumerate(names)}
    expression = np.zeros((n_frames, len(names)), np.float32)
    info: dict[str, Any] = {"kind": kind, "seed": int(seed)}
    if kind == "expression":
        label = label or str(rng.choice(EXPRESSION_CLASSES))
        intensity = 0.0 if label == "neutral" else float(rng.uniform(0.45, 1.0))
        target = class_vector(label, names) * intensity
        target *= np.clip(rng.normal(1.0, 0.2, len(names)), 0.5, 1.5)  # per-unit and left/right variation
        stray = rng.choice(_mixable(names), size=int(rng.integers(1, 4)), replace=False)
        target[[index[s] for s in stray]] += rng.uniform(0, 0.15, len(stray))  # units the recipe leaves alone
        env, onset, apex = _envelope(rng, n_frames)
        expression = np.clip(env[:, None] * target[None], 0, 1)
        info.update(label=label, intensity=round(intensity, 4), onset_frame=onset, apex_frame=min(apex, n_frames - 1),
                    stray_units=[str(s) for s in stray])
        head_amp = 15.0
    elif kind == "mix":
        units = rng.choice(_mixable(names), size=int(rng.integers(2, 7)), replace=False)
        for unit in units:
            peak = float(rng.uniform(0.3, 1.0))
            expression[:, index[unit]] = np.clip(peak * (0.5 + smooth_track(rng, n_frames, 0.5, (8, 24))), 0, 1)
        info.update(units=[str(u) for u in units])
        head_amp = 15.0
    else:
        units = rng.choice(_mixable(names), size=int(rng.integers(0, 3)), replace=False)
        for unit in units:
            expression[:, index[unit]] = float(rng.uniform(0.1, 0.4))
        info.update(units=[str(u) for u in units])
        head_amp = MAX_HEAD_DEG
    if kind != "expression":
        label = None

    # Head: per-axis amplitude between head_amp/2 and head_amp; some clips hold almost still.
    still = rng.random() < (0.15 if kind == "pose" else 0.33)
    amps = rng.uniform(0.0, 3.0, 3) if still else rng.uniform(head_amp / 2, head_amp, 3)
    pitch, yaw, roll = (np.clip(smooth_track(rng, n_frames, a) + rng.uniform(-a, a) * 0.3, -MAX_HEAD_DEG, MAX_HEAD_DEG)
                        for a in amps)
    rotation = euler_to_axis_angle(np.radians(pitch), np.radians(yaw), np.radians(roll))
    translation = np.stack([smooth_track(rng, n_frames, 0.008) for _ in range(3)], axis=1)
    gaze = np.stack([np.radians(smooth_track(rng, n_frames, 8.0, (6, 20))), np.radians(smooth_track(rng, n_frames, 10.0, (6, 20))),
                     np.zeros(n_frames)], axis=1)  # eyes pitch and yaw together
    blink, apexes = blink_track(rng, n_frames, FPS, float(rng.uniform(0.15, 0.6)))
    for unit in BLINK_UNITS:  # the rendered lid is max(expression, blink): the eyeBlink columns carry both
        expression[:, index[unit]] = np.maximum(expression[:, index[unit]], blink)
    info.update(blink_frames=apexes, head_deg_max=[round(float(np.abs(a).max()), 2) for a in (pitch, yaw, roll)])
    if label is not None:
        info["label"] = label
    clip = AnimationClip(fps=FPS, start_frame=1, head_id=HEAD_ID, expression=expression, expression_names=names,
                         global_rotation=rotation, global_translation=translation, eye_L=gaze, eye_R=gaze,
                         blink=blink, provenance={"video_clip": info})
    conditions = sample_conditions(rng, int(seed))
    return clip, conditions


def _mixable(names: tuple[str, ...]) -> list[str]:
    return [n for n in names if not n.startswith(_MIX_EXCLUDED_PREFIXES)]


# ------------------------------------------------------------------------------------------ corpus


def clip_seed(corpus_seed: int, index: int) -> int:
    """The seed of corpus entry ``index``: independent of how many clips the corpus has."""
    return int(np.random.SeedSequence([int(corpus_seed), int(index)]).generate_state(1)[0])


def split_of(corpus_seed: int, index: int, heldout_share: float) -> str:
    """``"heldout"`` or ``"train"``, stable for an entry whatever the corpus size."""
    u = np.random.default_rng(np.random.SeedSequence([int(corpus_seed), int(index), 0x5EED])).random()
    return "heldout" if u < heldout_share else "train"


def kind_of(index: int) -> tuple[str, int | None]:
    """Corpus schedule: half expression clips (classes in turn), a quarter mixes, a quarter poses."""
    slot = index % 4
    if slot in (0, 1):
        return "expression", (index // 4 * 2 + slot) % len(EXPRESSION_CLASSES)
    return ("mix" if slot == 2 else "pose"), None


def plan_corpus_entry(corpus_seed: int, index: int, n_frames: int = 60, heldout_share: float = 0.2,
                      relit_share: float = 0.25, names: tuple[str, ...] | None = None) -> list[VideoClipPlan]:
    """Entry ``index`` of a video corpus: its plan, and a second plan under another lighting for a
    ``relit_share`` of the entries (same clip, same split, so error growth under lighting change can be measured)."""
    seed = clip_seed(corpus_seed, index)
    kind, class_index = kind_of(index)
    label = EXPRESSION_CLASSES[class_index] if class_index is not None else None
    clip, conditions = plan_video_clip(seed, kind, n_frames, label=label, names=names)
    split = split_of(corpus_seed, index, heldout_share)
    info = dict(clip.provenance["video_clip"])
    plans = [VideoClipPlan(index, seed, kind, split, clip, conditions, label, info)]
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x11647]))
    if rng.random() < relit_share:
        plans.append(VideoClipPlan(index, seed, kind, split, clip, other_lighting(conditions, rng), label,
                                   {**info, "relit_of": entry_name(index)}))
    return plans


def entry_name(index: int, relit: bool = False) -> str:
    return f"v{index:05d}" + ("_relit" if relit else "")


CORPUS_FORMAT = "lattice_talk.video_corpus/1"
MANIFEST = "manifest.json"


def manifest_entry(plan: VideoClipPlan) -> dict[str, Any]:
    """One video's manifest record: files (relative to the corpus folder), split, label, conditions."""
    relit = "relit_of" in plan.info
    name = entry_name(plan.index, relit)
    return {
        "name": name,
        "index": plan.index,
        "video": f"{name}.mp4",
        "clip": f"{entry_name(plan.index)}.npz",  # a relit video shares its partner's ground truth
        "split": plan.split,
        "kind": plan.kind,
        "label": plan.label,
        "seed": plan.seed,
        "lighting": plan.conditions.lighting,
        "relit_of": plan.info.get("relit_of"),
        "n_frames": plan.clip.n_frames,
        "fps": plan.clip.fps,
        "conditions": plan.conditions.to_json(),
        "info": plan.info,
    }


def manifest_header(seed: int, n_frames: int, heldout_share: float, relit_share: float) -> dict[str, Any]:
    return {
        "format": CORPUS_FORMAT,
        "seed": int(seed),
        "n_frames": int(n_frames),
        "fps": FPS,
        "size": [WIDTH, HEIGHT],
        "heldout_share": heldout_share,
        "relit_share": relit_share,
        "classes": list(EXPRESSION_CLASSES),
        "class_recipes": CLASS_RECIPES,
        "lightings": list(LIGHTINGS),
        "conventions": "global_rotation: axis-angle, R = Ry(yaw)·Rx(pitch)·Rz(roll) in the head frame "
                       "(+X subject's left, +Y up, +Z out of the face); camera looks along −Z at the face",
    }
