"""Identity verification from a document record and ID photo data (seed S15-S22), pluggable.

The authentication server asks an `IdentityVerifier` two things: what the
eKYC application must capture (`photo_request`: S15, relayed to the terminal
by the management server, S16) and whether the captured ID photo data shows
the document's holder, alive (`verify`: S22).

`FaceLivenessVerifier`, the built-in one, **simulates an eKYC vendor**. Real
vendors compare a face-feature vector of the live capture with the one of the
document's photo and run liveness (anti-spoofing) checks; here the vectors are
carried in the data itself (no image processing happens) and liveness is the
seed's own description (S18): the user turns the head in the directions the
app asks for, and a still image prepared in advance fails. It checks:

- the capture answers this request (its nonce): a capture recorded for an
  earlier request is refused;
- every frame's face vector is within the cosine threshold of the document's
  (a wrong face fails);
- the requested directions appear in order, each with the head turned beyond
  `MIN_TURN_DEGREES` that way, and the frames are not one picture repeated (a
  still image fails).

A real vendor plugs in as any object with the same two methods (usually a thin
client of the vendor's API): `cardemu server ekyc-auth --verifier module:factory`
calls `factory()` for it (`load_verifier`).
"""

from __future__ import annotations

import importlib
import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from host.systems.ekyc.demo import FACE_DIMENSIONS

__all__ = [
    "DIRECTIONS",
    "FaceLivenessVerifier",
    "IdentityVerifier",
    "VerifierVerdict",
    "capture",
    "load_verifier",
    "still_capture",
]

DIRECTIONS = ("up", "down", "left", "right")
MIN_TURN_DEGREES = 15.0
MAX_FRAMES = 64


@dataclass(frozen=True)
class VerifierVerdict:
    """A verifier's answer: `ok`, a short `reason` code when not ("face", "liveness",
    "request", "document", "malformed"), and one line for the log and the user."""

    ok: bool
    reason: str = ""
    detail: str = ""


class IdentityVerifier(Protocol):
    """What the authentication server needs of an eKYC vendor."""

    name: str

    def photo_request(self, random_bytes: Callable[[int], bytes]) -> dict[str, Any]:
        """The instructions for the terminal's eKYC application (JSON-ready)."""
        ...

    def verify(
        self, document: dict[str, Any], photo: dict[str, Any], request: dict[str, Any]
    ) -> VerifierVerdict:
        """Does the ID photo data, captured for `request`, show the document's holder, alive?"""
        ...


def _vector(value: Any) -> list[float] | None:
    if not isinstance(value, list) or len(value) != FACE_DIMENSIONS:
        return None
    if not all(isinstance(x, int | float) and math.isfinite(x) for x in value):
        return None
    return [float(x) for x in value]


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    if na == 0 or nb == 0:
        return 0.0
    return sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)


def _turned(direction: str, yaw: float, pitch: float) -> bool:
    return {
        "up": pitch >= MIN_TURN_DEGREES,
        "down": pitch <= -MIN_TURN_DEGREES,
        "left": yaw <= -MIN_TURN_DEGREES,
        "right": yaw >= MIN_TURN_DEGREES,
    }.get(direction, False)


class FaceLivenessVerifier:
    """The built-in verifier: a simulated eKYC vendor (see the module docstring).

    Args:
        threshold: the least cosine similarity between a frame's face vector and
            the document's (0.8: the demo's same-person pairs score about 0.93,
            different people about 0 ± 0.2).
        turns: how many directions a request asks for.
    """

    name = "built-in face + liveness (simulated eKYC vendor)"

    def __init__(self, threshold: float = 0.8, turns: int = 3) -> None:
        self.threshold = threshold
        self.turns = turns

    def photo_request(self, random_bytes: Callable[[int], bytes]) -> dict[str, Any]:
        rng = random.Random(random_bytes(16))
        directions = rng.sample(DIRECTIONS, self.turns)
        return {
            "kind": "face-liveness",
            "directions": directions,
            "nonce": random_bytes(16).hex().upper(),
            "message": "Look at the camera, then turn your head " + ", ".join(directions),
        }

    def verify(
        self, document: dict[str, Any], photo: dict[str, Any], request: dict[str, Any]
    ) -> VerifierVerdict:
        reference = _vector(document.get("face"))
        if reference is None:
            return VerifierVerdict(False, "document", "the document record has no face vector")
        if not isinstance(photo, dict) or photo.get("nonce") != request.get("nonce"):
            return VerifierVerdict(False, "request", "the capture was not made for this request")
        frames = photo.get("frames")
        if not isinstance(frames, list) or not 1 <= len(frames) <= MAX_FRAMES:
            return VerifierVerdict(False, "malformed", f"1 to {MAX_FRAMES} frames expected")
        parsed: list[tuple[str, float, float, list[float]]] = []
        for f in frames:
            if not isinstance(f, dict):
                return VerifierVerdict(False, "malformed", "a frame is not an object")
            face = _vector(f.get("face"))
            yaw, pitch = f.get("yaw"), f.get("pitch")
            if (
                face is None
                or not isinstance(yaw, int | float)
                or not isinstance(pitch, int | float)
                or not (math.isfinite(yaw) and math.isfinite(pitch))
            ):
                return VerifierVerdict(False, "malformed", "a frame without face vector or pose")
            parsed.append((str(f.get("direction", "")), float(yaw), float(pitch), face))
        worst = min(_cosine(face, reference) for _, _, _, face in parsed)
        if worst < self.threshold:
            return VerifierVerdict(
                False,
                "face",
                f"the face does not match the document's (similarity {worst:.2f} "
                f"< {self.threshold:.2f})",
            )
        distinct = {tuple(face) for *_, face in parsed} | {(y, p) for _, y, p, _ in parsed}
        if len(parsed) < 2 or len(distinct) <= 2:
            return VerifierVerdict(False, "liveness", "a still image: no motion between frames")
        wanted = list(request.get("directions", []))
        i = 0
        for direction, yaw, pitch, _ in parsed:
            if i < len(wanted) and direction == wanted[i] and _turned(direction, yaw, pitch):
                i += 1
        if i < len(wanted):
            return VerifierVerdict(
                False,
                "liveness",
                f"no motion {wanted[i]!r} as asked (liveness failed after {i} of {len(wanted)})",
            )
        return VerifierVerdict(True, "", f"face similarity {worst:.2f}, {len(wanted)} turns seen")


def load_verifier(spec: str | None) -> IdentityVerifier:
    """The verifier `module:factory` names (`factory()` is called), or the built-in one.

    Raises:
        ValueError: `spec` does not name a callable that returns a verifier.
    """
    if not spec:
        return FaceLivenessVerifier()
    module, _, attr = spec.partition(":")
    if not module or not attr:
        raise ValueError(f"a verifier is module:factory, not {spec!r}")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as e:
        raise ValueError(f"cannot load the verifier {spec!r}: {e}") from None
    verifier = factory()
    if not (hasattr(verifier, "photo_request") and hasattr(verifier, "verify")):
        raise ValueError(f"{spec!r} did not return a verifier (photo_request, verify)")
    return verifier


# -- the terminal's eKYC application (S17-S18) ----------------------------------------------


def _jitter(face: Sequence[float], rng: random.Random, sigma: float) -> list[float]:
    v = [x + rng.gauss(0.0, sigma) for x in face]
    n = math.sqrt(sum(x * x for x in v))
    return [round(x / n, 6) for x in v]


_POSE = {"up": (0.0, 25.0), "down": (0.0, -25.0), "left": (-25.0, 0.0), "right": (25.0, 0.0)}


def capture(
    face: Sequence[float], request: dict[str, Any], *, seed: bytes | None = None
) -> dict[str, Any]:
    """What the phone's camera records of a live `face` following the request (S18)."""
    rng = random.Random(seed if seed is not None else os.urandom(16))
    frames = [{"direction": "front", "yaw": 0.0, "pitch": 0.0, "face": _jitter(face, rng, 0.05)}]
    for direction in request.get("directions", []):
        yaw, pitch = _POSE.get(direction, (0.0, 0.0))
        frames.append(
            {
                "direction": direction,
                "yaw": round(yaw + rng.uniform(-3, 3), 2),
                "pitch": round(pitch + rng.uniform(-3, 3), 2),
                "face": _jitter(face, rng, 0.05),
            }
        )
    return {"nonce": request.get("nonce"), "frames": frames}


def still_capture(face: Sequence[float], request: dict[str, Any]) -> dict[str, Any]:
    """A photo held up to the camera: one picture for every frame, labelled as asked."""
    picture = _jitter(face, random.Random(0), 0.05)
    frames = [{"direction": "front", "yaw": 0.0, "pitch": 0.0, "face": picture}]
    frames += [
        {"direction": d, "yaw": 0.0, "pitch": 0.0, "face": picture}
        for d in request.get("directions", [])
    ]
    return {"nonce": request.get("nonce"), "frames": frames}
