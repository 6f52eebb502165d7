"""The city's ALTCHA captcha: challenge, verification and the JWT token.

The city proxies challenges from captcha.muenchen.de (ALTCHA v2 since muc44,
v1 before); the simulator creates and verifies them with the ``altcha``
package, which is imported lazily so that the rest of the library works
without the ``simulator`` extra.

The captcha token is the city's own JWT (HS256, payload ``{ip, iat, exp}``),
written here with :mod:`hmac` to avoid a JWT dependency.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
import datetime as dt
import hashlib
import hmac
import json
import secrets
from typing import TYPE_CHECKING, Any, cast
import urllib.parse

from .errors import CityError

if TYPE_CHECKING:
    from mta_client.clock import Clock

__all__ = ["CaptchaConfig", "CaptchaService", "decode_jwt", "encode_jwt"]

_V2_SIGNED_KEYS = ("algorithm", "nonce", "salt", "cost", "keyLength", "keyPrefix")


@dataclass(frozen=True, slots=True)
class CaptchaConfig:
    """Captcha settings of the simulator.

    Attributes:
        version: ALTCHA challenge generation: 2 (current) or 1 (legacy).
        algorithm: v2 key derivation / v1 hash algorithm.
        cost: v2 work factor (hash iterations per try).
        key_prefix: v2 hex prefix the derived key must start with.
        max_number: v1 upper bound of the secret number.
        challenge_ttl: seconds a challenge stays valid.
        token_ttl: seconds a captcha token (JWT) stays valid (city: 300).
        site_key: what ``/captcha-details/`` reports as ``siteKey``.
        enabled: ``captchaEnabled`` of ``/captcha-details/``.

    """

    version: int = 2
    algorithm: str = "SHA-256"
    cost: int = 1000
    key_prefix: str = "00"
    max_number: int = 100_000
    challenge_ttl: int = 600
    token_ttl: int = 300
    site_key: str = "FCMVH9Q2T4J8DRSL"
    enabled: bool = True


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_jwt(payload: dict[str, Any], secret: bytes) -> str:
    """Return an HS256 JWT for ``payload``."""
    header = _b64url(
        json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode()
    )
    body = _b64url(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = f"{header}.{body}".encode()
    signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{header}.{body}.{_b64url(signature)}"


def decode_jwt(token: str, secret: bytes) -> dict[str, Any]:
    """Verify an HS256 JWT and return its payload.

    Raises:
        ValueError: malformed token, wrong algorithm or bad signature.

    """
    parts = token.split(".")
    if len(parts) != 3:
        msg = "malformed token"
        raise ValueError(msg)
    try:
        header = json.loads(_b64url_decode(parts[0]))
        payload = json.loads(_b64url_decode(parts[1]))
        signature = _b64url_decode(parts[2])
    except (binascii.Error, ValueError, UnicodeDecodeError) as err:
        msg = "malformed token"
        raise ValueError(msg) from err
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        msg = "unsupported algorithm"
        raise ValueError(msg)
    expected = hmac.new(
        secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(expected, signature) or not isinstance(payload, dict):
        msg = "bad signature"
        raise ValueError(msg)
    return payload


class CaptchaService:
    """Creates and verifies challenges and issues and checks tokens."""

    def __init__(self, clock: Clock, config: CaptchaConfig, secret: bytes) -> None:
        """Bind the service to the simulator's clock and secret."""
        self.clock = clock
        self.config = config
        self._secret = secret
        self._hmac_key = secret.hex()
        # nonce (v2) or challenge hash (v1) -> expiresAt on the simulator clock.
        # altcha checks expiry against the wall clock; the simulator's clock may
        # be virtual, so expiry is checked here and kept out of the signature.
        self._issued: dict[str, int] = {}

    def details(self) -> dict[str, Any]:
        """Return the ``/captcha-details/`` body."""
        return {
            "siteKey": self.config.site_key,
            "captchaChallenge": "https://captcha.muenchen.de/api/v1/captcha/challenge",
            "captchaVerify": "https://captcha.muenchen.de/api/v1/captcha/verify",
            "captchaEnabled": self.config.enabled,
        }

    def _prune(self, now: float) -> None:
        for key in [k for k, exp in self._issued.items() if exp < now]:
            del self._issued[key]

    def challenge(self) -> dict[str, Any]:
        """Create a new challenge in the configured ALTCHA format."""
        import altcha  # noqa: PLC0415 - optional extra, imported on first use

        now = self.clock.time()
        self._prune(now)
        expires_at = int(now) + self.config.challenge_ttl
        if self.config.version == 1:
            from altcha import v1  # noqa: PLC0415 - optional extra

            options = v1.ChallengeOptions(
                algorithm=cast("Any", self.config.algorithm),
                max_number=self.config.max_number,
                hmac_key=self._hmac_key,
                expires=dt.datetime.fromtimestamp(expires_at, dt.UTC),
            )
            c1 = v1.create_challenge(options)
            self._issued[c1.challenge] = expires_at
            return {
                "algorithm": c1.algorithm,
                "challenge": c1.challenge,
                "maxnumber": c1.max_number,
                "salt": c1.salt,
                "signature": c1.signature,
            }
        c2 = altcha.create_challenge(
            self.config.algorithm,
            self.config.cost,
            key_prefix=self.config.key_prefix,
            hmac_secret=self._hmac_key,
        )
        params = c2.parameters.to_dict()
        self._issued[params["nonce"]] = expires_at
        return {
            "parameters": {
                "algorithm": params["algorithm"],
                "nonce": params["nonce"],
                "salt": params["salt"],
                "cost": params["cost"],
                "keyLength": params["keyLength"],
                "keyPrefix": params["keyPrefix"],
                "keySignature": None,
                "memoryCost": None,
                "parallelism": None,
                "expiresAt": expires_at,
                "data": None,
            },
            "signature": c2.signature,
        }

    def verify(self, body: Any) -> dict[str, Any]:  # noqa: PLR0911 - one per city text
        """Verify a ``/captcha-verify/`` body; return the city's answer (always 200).

        The caller adds the token on success.
        """
        payload = body.get("payload") if isinstance(body, dict) else None
        if not payload:
            return _failure("No payload provided")
        if not isinstance(payload, str):
            return _failure("Payload could not be decoded")
        # CaptchaService accepts the URL-safe alphabet (strtr('-_', '+/')).
        text = payload.strip().replace("-", "+").replace("_", "/")
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            return _failure("Payload could not be decoded")
        try:
            decoded = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return _failure("Invalid JSON in payload")
        if not isinstance(decoded, dict):
            return _failure("Invalid JSON in payload")
        if self.config.version == 1:
            valid = self._verify_v1(decoded)
        else:
            valid = self._verify_v2(decoded)
        if not valid:
            return {
                "meta": {"success": False, "error": "Captcha verification failed"},
                "data": {"valid": False},
            }
        return {"meta": {"success": True}, "data": {"valid": True}}

    def _verify_v2(self, decoded: dict[str, Any]) -> bool:
        import altcha  # noqa: PLC0415 - optional extra

        try:
            challenge = decoded["challenge"]
            params = challenge["parameters"]
            expires_at = self._issued.get(str(params["nonce"]))
            if expires_at is None or params.get("expiresAt") != expires_at:
                return False
            if self.clock.time() > expires_at:
                return False
            signed = {k: params[k] for k in _V2_SIGNED_KEYS}
            parsed = altcha.Payload(
                altcha.Challenge(
                    altcha.ChallengeParameters.from_dict(signed),
                    challenge.get("signature"),
                ),
                altcha.Solution.from_dict(decoded["solution"]),
            )
            result = altcha.verify_solution(parsed, self._hmac_key)
        except (KeyError, TypeError, ValueError, AttributeError):
            return False
        return bool(result.verified)

    def _verify_v1(self, decoded: dict[str, Any]) -> bool:
        from altcha import v1  # noqa: PLC0415 - optional extra

        if not isinstance(decoded.get("number"), int):
            return False
        try:
            challenge = str(decoded["challenge"])
            expires_at = self._issued.get(challenge)
            salt_query = str(decoded["salt"]).split("?", 1)
            params = urllib.parse.parse_qs(salt_query[1]) if len(salt_query) > 1 else {}
            if expires_at is None or params.get("expires") != [str(expires_at)]:
                return False
            if self.clock.time() > expires_at:
                return False
            ok, _ = v1.verify_solution(
                cast("Any", decoded), self._hmac_key, check_expires=False
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return False
        return bool(ok)

    def issue_token(self, ip: str) -> str:
        """Return a captcha token bound to ``ip``."""
        now = int(self.clock.time())
        payload = {"ip": ip, "iat": now, "exp": now + self.config.token_ttl}
        return encode_jwt(payload, self._secret)

    def check_token(self, token: str | None, ip: str) -> None:
        """Validate a captcha token like ``TokenValidationService``.

        Raises:
            CityError: ``captchaMissing``, ``captchaInvalid`` or ``captchaExpired``.

        """
        if not token:
            raise CityError("captchaMissing")
        try:
            payload = decode_jwt(token, self._secret)
        except ValueError as err:
            raise CityError("captchaInvalid") from err
        now = self.clock.time()
        exp, iat = payload.get("exp"), payload.get("iat")
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise CityError("captchaInvalid")
        if iat > now + 1:  # php-jwt: "Cannot handle token prior to ..."
            raise CityError("captchaInvalid")
        if now >= exp:
            raise CityError("captchaExpired")
        if payload.get("ip") != ip:
            raise CityError("captchaInvalid")


def _failure(message: str) -> dict[str, Any]:
    return {"meta": {"success": False, "error": message}, "data": None}


def new_secret() -> bytes:
    """Return a random secret for challenge signatures and tokens."""
    return secrets.token_bytes(32)
