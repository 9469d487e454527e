"""The 52 ARKit face units and matching a character's shape-key names to them.

The default head's expression basis *is* these units, so its takes drive any face whose shape keys carry
ARKit names — under whatever spelling the rig's author chose. :func:`name_key` reduces a name to a spelling-free
key (case, separators, ``_L``/``.L``/``Left`` sides, namespaces and common prefixes), and :func:`match_arkit_names`
pairs each unit with the best-matching shape key: an exact name first, then one equal but for case, then one
with the same key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Live Link Face's order (the iPhone app's CSV columns and packets), camelCase as ARKit spells them.
ARKIT_NAMES: tuple[str, ...] = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawRight", "jawLeft", "jawOpen", "mouthClose", "mouthFunnel",
    "mouthPucker", "mouthRight", "mouthLeft", "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthPressLeft", "mouthPressRight",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight", "browDownLeft",
    "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight", "cheekPuff", "cheekSquintLeft",
    "cheekSquintRight", "noseSneerLeft", "noseSneerRight", "tongueOut",
)
EYELID_UNITS = ("eyeBlinkLeft", "eyeBlinkRight")  # carry a clip's eyelids/blink channels
JAW_OPEN = "jawOpen"

# Leading words rigs put before the unit's name: exporters' blend-shape node names (Maya's "blendShape1."),
# "BS_", "ARKit_", "SK_", and Polywink-style numbering ("A25_Jaw_Open").
_PREFIX_WORDS = {"arkit", "bs", "blendshape", "blendshapes", "shape", "shapes", "sk", "morph", "facs"}
_NUMBERING = re.compile(r"a\d{1,2}")
_SIDES = {"l": "left", "left": "left", "r": "right", "right": "right"}
_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|[^A-Za-z0-9]+")


def _words(name: str) -> list[str]:
    """Lower-case words of a name split at separators and camelCase humps."""
    return [w.lower() for w in _WORD_BREAK.split(name) if w]


def name_key(name: str) -> str:
    """A key equal for every common spelling of one unit: ``eyeBlinkLeft``, ``EyeBlink_L``, ``eye_blink.L``,
    ``Left_EyeBlink``, ``blendShape1.eyeBlinkLeft``, ``ARKit:EyeBlinkLeft`` and ``A01_Eye_Blink_Left`` all give
    ``eyeblinkleft``."""
    name = re.split(r"[:|]", name)[-1]  # namespaces (FBX/Maya "ns:name", "a|b" paths)
    head, dot, tail = name.rpartition(".")
    if dot and tail.lower() not in _SIDES:  # "blendShape1.eyeBlinkLeft"; a ".L" suffix stays
        name = tail
    words = _words(name)
    while len(words) > 1 and (words[0] in _PREFIX_WORDS or _NUMBERING.fullmatch(words[0])):
        words.pop(0)
    words = [_SIDES.get(w, w) for w in words]
    if len(words) > 1 and words[0] in ("left", "right"):  # "L_eyeBlink": side first
        words.append(words.pop(0))
    return "".join(words)


@dataclass(frozen=True)
class NameMatch:
    """Which shape key carries each unit, the units nothing carries, and the keys no unit uses."""

    targets: dict[str, str]  # unit → shape-key name
    unmatched: tuple[str, ...]  # units in ``channels`` order
    unused: tuple[str, ...]  # shape keys in the order given


def match_arkit_names(target_names: list[str] | tuple[str, ...],
                      channels: tuple[str, ...] = ARKIT_NAMES) -> NameMatch:
    """Pair each of ``channels`` with one of ``target_names``; a key is used at most once, and on ties the
    earlier key wins, so the result does not depend on anything but the two name lists."""
    by_rank: list[dict[str, str]] = [{}, {}, {}]  # exact, case-insensitive, spelling-free
    for target in target_names:
        for rank, key in enumerate((target, target.casefold(), name_key(target))):
            by_rank[rank].setdefault(key, target)
    targets: dict[str, str] = {}
    used: set[str] = set()
    for channel in channels:
        for rank, key in enumerate((channel, channel.casefold(), name_key(channel))):
            target = by_rank[rank].get(key)
            if target is not None and target not in used:
                targets[channel] = target
                used.add(target)
                break
    unmatched = tuple(c for c in channels if c not in targets)
    return NameMatch(targets, unmatched, tuple(t for t in target_names if t not in used))
