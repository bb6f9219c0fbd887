"""The ECASD: the eUICC's identity, its signing key and the CI keys it trusts (SGP.22 §2.4.2).

Installed once at manufacture with `card.sgp22.params.EcasdParams`. It answers
SELECT (with its FCI) and nothing else over APDUs; the ISD-R reaches it through
`card.sgp22.ecasd.EcasdInterface`, granted to the ISD-R's AID only. The private
key never leaves it: `sign` returns TR-03111 r || s signatures.

The local-authentication applet (seed 000) gets a narrower object,
`card.sgp22.localauth.LocalAuthSigner`: the EID, the certificates and a
signature over a local-authentication result the ECASD builds itself (with
its own EID), never a signature over data of the applet's choosing.
"""

from __future__ import annotations

from card.crypto.keys import EcKeyPair
from card.framework import AID, Applet, CardError, persistent
from card.sgp22.certs import ec_public_key, load_certificate
from card.sgp22.ecasd import ISD_R_AID, EcasdInterface
from card.sgp22.localauth import (
    LOCAL_AUTH_AID,
    LOCAL_AUTH_PARAMETER,
    LocalAuthSigner,
    local_auth_signed,
)
from card.sgp22.params import EcasdParams
from card.sw import SW

__all__ = ["Ecasd"]


class Ecasd(Applet, EcasdInterface):
    """The eUICC Controlling Authority Security Domain (see the module docstring)."""

    #: the install parameters, as given (EcasdParams bytes)
    params = persistent(b"")

    def on_install(self, params: bytes) -> None:
        try:
            p = EcasdParams.from_bytes(params)
            self._key_of(p)
        except ValueError as e:
            raise CardError(SW.WRONG_DATA) from e
        self.params = bytes(params)

    def _p(self) -> EcasdParams:
        cached = self.__dict__.get("_cache")
        raw = self.params
        if cached is None or cached[0] != raw:
            p = EcasdParams.from_bytes(raw)
            cached = self._cache = (raw, p, self._key_of(p))
        return cached[1]

    @staticmethod
    def _key_of(p: EcasdParams) -> EcKeyPair:
        cert = load_certificate(p.euicc_certificate)
        public = ec_public_key(cert)
        # Deterministic (RFC 6979) signatures: a seeded test run replays byte for byte.
        key = EcKeyPair.from_private_value(public.curve, p.private_key, deterministic=True)
        if key.public.cryptography_key.public_numbers() != public.cryptography_key.public_numbers():
            raise ValueError("the private key does not match CERT.EUICC")
        return key

    def get_shareable_interface_object(
        self, client_aid: AID, parameter: int
    ) -> EcasdInterface | LocalAuthSigner | None:
        if bytes(client_aid) == ISD_R_AID:
            return self
        if bytes(client_aid) == LOCAL_AUTH_AID and parameter == LOCAL_AUTH_PARAMETER:
            # A separate object: a proxy exposes every Shareable interface of its target's
            # class, and the local-auth applet must not reach EcasdInterface.sign.
            return _LocalAuthGrant(self)
        return None

    # -- EcasdInterface -----------------------------------------------------------------

    def eid(self) -> bytes:
        return self._p().eid

    def euicc_certificate(self) -> bytes:
        return self._p().euicc_certificate

    def eum_certificate(self) -> bytes:
        return self._p().eum_certificate

    def ci_keys(self) -> tuple[tuple[bytes, str, bytes], ...]:
        return tuple((c.ski, c.curve, c.point) for c in self._p().ci_keys)

    def signing_ci_pkids(self) -> tuple[bytes, ...]:
        from card.sgp22.certs import authority_key_id

        aki = authority_key_id(load_certificate(self._p().eum_certificate))
        return () if aki is None else (aki,)

    def sign(self, data: bytes) -> bytes:
        self._p()
        return self._cache[2].sign(bytes(data), encoding="raw")


class _LocalAuthGrant(LocalAuthSigner):
    """The ECASD's `LocalAuthSigner` for the local-authentication applet (runs in its context)."""

    __slots__ = ("_ecasd",)

    def __init__(self, ecasd: Ecasd) -> None:
        self._ecasd = ecasd

    def eid(self) -> bytes:
        return self._ecasd.eid()

    def certificates(self) -> tuple[bytes, bytes]:
        return self._ecasd.euicc_certificate(), self._ecasd.eum_certificate()

    def sign_local_auth(self, challenge: bytes, outcome: int, method: int) -> tuple[bytes, bytes]:
        try:
            signed = local_auth_signed(self._ecasd.eid(), bytes(challenge), outcome, method)
        except ValueError as e:
            raise CardError(SW.WRONG_DATA) from e
        return signed, self._ecasd.sign(signed)
