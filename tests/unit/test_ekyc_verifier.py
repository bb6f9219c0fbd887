"""The identity verifier: the built-in simulated eKYC vendor's decisions, and plugging one in."""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from host.systems.ekyc.demo import person
from host.systems.ekyc.verifier import (
    FaceLivenessVerifier,
    VerifierVerdict,
    capture,
    load_verifier,
    still_capture,
)

WHO = person(0)
V = FaceLivenessVerifier()


def _request() -> dict[str, Any]:
    return V.photo_request(os.urandom)


def test_the_holder_alive_passes() -> None:
    req = _request()
    assert len(req["directions"]) == 3 and len(set(req["directions"])) == 3
    verdict = V.verify(WHO.document, capture(WHO.face, req), req)
    assert verdict.ok, verdict


@pytest.mark.parametrize("seed", range(5))
def test_someone_else_fails_on_the_face(seed: int) -> None:
    req = _request()
    other = person(seed, name=f"someone {seed}")
    verdict = V.verify(WHO.document, capture(other.face, req), req)
    assert (verdict.ok, verdict.reason) == (False, "face")


def test_a_still_image_fails_liveness() -> None:
    req = _request()
    verdict = V.verify(WHO.document, still_capture(WHO.face, req), req)
    assert (verdict.ok, verdict.reason) == (False, "liveness")


def test_turning_the_wrong_way_fails_liveness() -> None:
    req = _request()
    wrong = {**req, "directions": req["directions"][::-1]}
    verdict = V.verify(WHO.document, capture(WHO.face, wrong), req)
    assert (verdict.ok, verdict.reason) == (False, "liveness")


def test_a_capture_for_another_request_fails() -> None:
    old = _request()
    req = _request()
    verdict = V.verify(WHO.document, capture(WHO.face, old), req)
    assert (verdict.ok, verdict.reason) == (False, "request")


def test_a_document_without_face_fails() -> None:
    req = _request()
    doc = {k: v for k, v in WHO.document.items() if k != "face"}
    assert V.verify(doc, capture(WHO.face, req), req).reason == "document"


@settings(max_examples=50)
@given(
    st.recursive(
        st.none() | st.floats() | st.text(max_size=5),
        lambda c: st.lists(c) | st.dictionaries(st.text(max_size=5), c),
        max_leaves=20,
    )
)  # noqa: E501
def test_any_photo_data_gets_a_verdict(photo: Any) -> None:
    req = _request()
    data = photo if isinstance(photo, dict) else {"frames": photo, "nonce": req["nonce"]}
    verdict = V.verify(WHO.document, data, req)
    assert isinstance(verdict, VerifierVerdict) and not verdict.ok


class AlwaysNo:
    name = "a vendor that says no"

    def photo_request(self, random_bytes: Any) -> dict[str, Any]:
        return {"kind": "document-and-selfie"}

    def verify(self, document: Any, photo: Any, request: Any) -> VerifierVerdict:
        return VerifierVerdict(False, "vendor", "the vendor said no")


def make_always_no() -> AlwaysNo:
    return AlwaysNo()


def test_a_verifier_plugs_in_by_module_and_factory() -> None:
    v = load_verifier(f"{__name__}:make_always_no")
    assert v.name == "a vendor that says no"
    assert isinstance(load_verifier(None), FaceLivenessVerifier)
    for bad in ("nomodule", "no.such.module:f", f"{__name__}:nothing"):
        with pytest.raises(ValueError):
            load_verifier(bad)


def test_cli_refuses_a_verifier_it_cannot_load() -> None:
    from click.testing import CliRunner

    from host.cli import cli

    res = CliRunner().invoke(cli, ["server", "ekyc-auth", "--verifier", "no.such:thing"])
    assert res.exit_code == 2 and "cannot load the verifier" in res.output
