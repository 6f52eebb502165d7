"""ALTCHA proof-of-work captchas: solving challenges and caching the token.

Protected calls (``GET /available-calendar/``, ``POST /reserve-appointment/``)
need a captcha token. Getting one takes three steps: fetch a challenge
(``GET /captcha-challenge/``), solve it here, and send the payload that
:func:`solve_challenge` returns to ``POST /captcha-verify/``, which answers
with the token, a JWT that stays valid for a few minutes.
:class:`CaptchaTokenCache` keeps that token and fetches a new one shortly
before it expires.

Two generations of challenges exist, told apart by the ``parameters`` key:

* **ALTCHA v2** (current): find a counter whose derived key (iterated SHA,
  PBKDF2 or scrypt over the nonce and the counter) starts with ``keyPrefix``.
* **ALTCHA v1** (legacy): find the number ``n`` whose
  ``hash(salt + str(n))`` equals ``challenge``.

The solvers follow the official ``altcha`` package bit for bit, and are
bounded by a timeout and a largest counter, so a hostile challenge cannot
keep a worker busy forever.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping
import functools
import hashlib
from itertools import repeat
import json
import math
import re
import time
from typing import TYPE_CHECKING, Any, Final

from .clock import monotonic_of
from .exceptions import MTAInvalidResponseError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from .clock import Clock

__all__ = [
    "DEFAULT_TIME_LIMIT",
    "MAX_COUNTER",
    "CaptchaTokenCache",
    "solve_challenge",
    "solve_challenge_async",
    "token_expiry",
]

DEFAULT_TIME_LIMIT: Final = 60.0
"""Seconds a solver may run before it gives up."""

MAX_COUNTER: Final = 0xFFFF_FFFF
"""Largest counter (v2) or number (v1) tried: v2 encodes it as a uint32."""

# A single v2 attempt cannot be interrupted, so its cost bounds the overrun of
# the timeout: a million SHA rounds take about half a second in Python.
_MAX_COST: Final = 1_000_000
_MAX_KEY_LENGTH: Final = 512
_MAX_SCRYPT_MEMORY: Final = 256 * 1024 * 1024
# v1 numbers are cheap; the clock is read once per batch, not per number.
_V1_BATCH: Final = 16_384

_SHA_HASHES: Final[dict[str, Callable[[bytes], Any]]] = {
    "SHA-256": hashlib.sha256,
    "SHA-384": hashlib.sha384,
    "SHA-512": hashlib.sha512,
}
_PBKDF2_HASHES: Final = {
    "PBKDF2/SHA-256": "sha256",
    "PBKDF2/SHA-384": "sha384",
    "PBKDF2/SHA-512": "sha512",
}
_V1_HASHES: Final[dict[str, Callable[[bytes], Any]]] = {
    "SHA-1": hashlib.sha1,
    "SHA-256": hashlib.sha256,
    "SHA-512": hashlib.sha512,
}
_HEX: Final = re.compile(r"[0-9a-fA-F]*")


def solve_challenge(
    challenge: Mapping[str, Any],
    *,
    time_limit: float = DEFAULT_TIME_LIMIT,
    max_counter: int = MAX_COUNTER,
) -> str:
    """Solve an ALTCHA challenge and return the payload for ``/captcha-verify/``.

    The generation is detected from the challenge: a ``parameters`` object
    means v2, otherwise it must be a v1 challenge. This is CPU-bound and blocks;
    inside an event loop use :func:`solve_challenge_async`.

    Args:
        challenge: the challenge object as ``GET /captcha-challenge/`` returned it.
        time_limit: seconds after which solving is given up.
        max_counter: the largest counter (v2) or number (v1) to try.

    Returns:
        Base64 (standard alphabet) of the compact JSON payload: for v2
        ``{"challenge": <challenge unchanged>, "solution": {"counter",
        "derivedKey", "time"}}``, for v1 ``{"algorithm", "challenge", "number",
        "salt", "signature", "took"}``.

    Raises:
        MTAInvalidResponseError: the challenge is malformed, uses an
            unsupported algorithm, or has no solution within the bounds.

    """
    challenge = _object(challenge, "captcha challenge")
    deadline = time.monotonic() + time_limit
    started = time.perf_counter()
    if "parameters" in challenge:
        counter, derived_key = _solve_v2(challenge, deadline, max_counter)
        payload: dict[str, Any] = {
            "challenge": challenge,
            "solution": {
                "counter": counter,
                "derivedKey": derived_key,
                "time": _elapsed_ms(started),
            },
        }
    else:
        number = _solve_v1(challenge, deadline, max_counter)
        payload = {
            "algorithm": challenge["algorithm"],
            "challenge": challenge["challenge"],
            "number": number,
            "salt": challenge["salt"],
            "signature": challenge["signature"],
            "took": _elapsed_ms(started),
        }
    try:
        encoded = json.dumps(
            payload, separators=(",", ":"), allow_nan=False, default=_plain_json
        )
    except (TypeError, ValueError) as err:
        msg = "captcha challenge contains values that are not JSON"
        raise MTAInvalidResponseError(msg) from err
    return base64.b64encode(encoded.encode()).decode("ascii")


async def solve_challenge_async(
    challenge: Mapping[str, Any],
    *,
    time_limit: float = DEFAULT_TIME_LIMIT,
    max_counter: int = MAX_COUNTER,
) -> str:
    """Solve a challenge in a worker thread, so the event loop keeps running.

    Cancelling the caller does not stop the worker; ``time_limit`` bounds it.
    See :func:`solve_challenge` for arguments, result and errors.
    """
    return await asyncio.to_thread(
        solve_challenge, challenge, time_limit=time_limit, max_counter=max_counter
    )


# --- ALTCHA v2 ----------------------------------------------------------------


def _solve_v2(
    challenge: Mapping[str, Any], deadline: float, max_counter: int
) -> tuple[int, str]:
    parameters = _object(challenge["parameters"], "captcha challenge parameters")
    if not isinstance(challenge.get("signature"), str):
        msg = "captcha challenge has no signature"
        raise MTAInvalidResponseError(msg)
    nonce = _hex_field(parameters, "nonce")
    derive, key_length = _key_derivation(parameters)
    prefix = parameters.get("keyPrefix", "00")
    if not isinstance(prefix, str) or not _HEX.fullmatch(prefix):
        msg = "captcha challenge keyPrefix is not hex"
        raise MTAInvalidResponseError(msg)
    if len(prefix) > 2 * key_length:
        msg = "captcha challenge keyPrefix is longer than its key"
        raise MTAInvalidResponseError(msg)
    # The verifier compares lowercase hex, so an odd-length prefix is fine.
    prefix = prefix.lower()

    for counter in range(min(max_counter, MAX_COUNTER) + 1):
        derived_key = derive(nonce + counter.to_bytes(4, "big")).hex()
        if derived_key.startswith(prefix):
            return counter, derived_key
        if time.monotonic() > deadline:
            msg = f"captcha challenge not solved within the timeout ({counter} tries)"
            raise MTAInvalidResponseError(msg)
    msg = "captcha challenge has no solution up to the largest counter"
    raise MTAInvalidResponseError(msg)


def _key_derivation(
    parameters: Mapping[str, Any],
) -> tuple[Callable[[bytes], bytes], int]:
    """Return the challenge's key derivation (password -> key) and key length."""
    algorithm = parameters.get("algorithm")
    salt = _hex_field(parameters, "salt")
    cost = _int_field(parameters, "cost", 1, _MAX_COST)
    key_length = _int_field(parameters, "keyLength", 1, _MAX_KEY_LENGTH, default=32)

    if not isinstance(algorithm, str):
        raise _unsupported(algorithm)
    if algorithm in _SHA_HASHES:
        digest_size: int = _SHA_HASHES[algorithm](b"").digest_size
        derive = _iterated_hash(algorithm, salt, cost, key_length)
        return derive, min(key_length, digest_size)
    if algorithm in _PBKDF2_HASHES:
        hash_name = _PBKDF2_HASHES[algorithm]

        def pbkdf2(password: bytes) -> bytes:
            return hashlib.pbkdf2_hmac(hash_name, password, salt, cost, key_length)

        return pbkdf2, key_length
    if algorithm == "SCRYPT":
        return _scrypt(parameters, salt, cost, key_length), key_length
    raise _unsupported(algorithm)


def _iterated_hash(
    algorithm: str, salt: bytes, cost: int, key_length: int
) -> Callable[[bytes], bytes]:
    """ALTCHA's SHA derivation: hash ``salt + password``, then the digest again."""
    openssl = _openssl_iterated_hash(algorithm)
    if openssl is not None and key_length <= _OPENSSL_KEY_SIZE:

        def derive_in_openssl(password: bytes) -> bytes:
            return openssl(salt + password, cost)[:key_length]

        return derive_in_openssl

    new_hash = _SHA_HASHES[algorithm]
    more_rounds = cost - 1

    def derive(password: bytes) -> bytes:
        # Solving spends its time here: a bound constructor and ``digest``,
        # no ``hashlib.new`` name lookup, no per-round branch.
        digest: bytes = new_hash(salt + password).digest()
        for _ in repeat(None, more_rounds):
            digest = new_hash(digest).digest()
        return digest[:key_length]

    return derive


# OpenSSL's EVP_BytesToKey(cipher, md, salt=NULL, data, count, key, iv=NULL)
# computes exactly ALTCHA's iterated hash, md^count(data), and copies its first
# key-length bytes into ``key``. One call replaces ``count`` Python-level
# digests (several times faster). AES-256-ECB is only there for its 32-byte key and
# empty IV, so one digest chain fills the key and nothing more is computed.
_OPENSSL_KEY_SIZE: Final = 32
_OPENSSL_DIGESTS: Final = {
    "SHA-256": b"SHA256",
    "SHA-384": b"SHA384",
    "SHA-512": b"SHA512",
}


@functools.cache
def _openssl_iterated_hash(algorithm: str) -> Callable[[bytes, int], bytes] | None:
    """Return ``(data, rounds) -> key`` computed by OpenSSL, or ``None``.

    ``None`` when the interpreter's OpenSSL cannot be reached (no ``ctypes`` or
    ``_hashlib``, static linking, another platform) or disagrees with
    :mod:`hashlib` on a test vector; the pure Python derivation is used then.
    """
    try:
        import _hashlib  # noqa: PLC0415
        import ctypes  # noqa: PLC0415

        # dlsym() on the extension module also finds the libcrypto it links.
        libcrypto = ctypes.CDLL(_hashlib.__file__)
        bytes_to_key = libcrypto.EVP_BytesToKey
        aes_256_ecb = libcrypto.EVP_aes_256_ecb
        get_digest = libcrypto.EVP_get_digestbyname
        fetch_digest = getattr(libcrypto, "EVP_MD_fetch", None)
    except (ImportError, OSError, AttributeError):
        return None
    c_void_p, c_char_p, c_int = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    aes_256_ecb.restype, aes_256_ecb.argtypes = c_void_p, []
    get_digest.restype, get_digest.argtypes = c_void_p, [c_char_p]
    bytes_to_key.restype = c_int
    bytes_to_key.argtypes = [
        c_void_p,  # cipher
        c_void_p,  # md
        c_char_p,  # salt (NULL: none)
        c_char_p,  # data
        c_int,  # data length
        c_int,  # count
        c_char_p,  # key
        c_char_p,  # iv (NULL: not wanted)
    ]
    name = _OPENSSL_DIGESTS[algorithm]
    if fetch_digest is None:
        digest = get_digest(name)
    else:
        # A fetched digest spares OpenSSL 3 a provider lookup in every round.
        fetch_digest.restype = c_void_p
        fetch_digest.argtypes = [c_void_p, c_char_p, c_char_p]
        digest = fetch_digest(None, name, None)
    cipher = aes_256_ecb()
    if not cipher or not digest:
        return None

    def iterated_hash(data: bytes, rounds: int) -> bytes:
        # Sized for EVP_MAX_KEY_LENGTH, although AES-256 writes only 32 bytes.
        key = ctypes.create_string_buffer(64)
        written = bytes_to_key(cipher, digest, None, data, len(data), rounds, key, None)
        if written != _OPENSSL_KEY_SIZE:
            msg = "OpenSSL could not derive the captcha key"
            raise MTAInvalidResponseError(msg)
        return key.raw[:_OPENSSL_KEY_SIZE]

    new_hash = _SHA_HASHES[algorithm]
    expected = new_hash(new_hash(new_hash(b"altcha").digest()).digest()).digest()
    try:
        agrees = iterated_hash(b"altcha", 3) == expected[:_OPENSSL_KEY_SIZE]
    except MTAInvalidResponseError:
        agrees = False
    return iterated_hash if agrees else None


def _scrypt(
    parameters: Mapping[str, Any], salt: bytes, cost: int, key_length: int
) -> Callable[[bytes], bytes]:
    # altcha maps cost -> N, memoryCost -> r (default 8), parallelism -> p
    # (default 1), treating 0 like "absent".
    block_size = _int_field(parameters, "memoryCost", 0, 1024, default=0) or 8
    parallelism = _int_field(parameters, "parallelism", 0, 16, default=0) or 1
    max_memory = 2 * 128 * cost * block_size
    if max_memory > _MAX_SCRYPT_MEMORY:
        msg = "captcha challenge has unusable scrypt parameters"
        raise MTAInvalidResponseError(msg)

    def derive(password: bytes) -> bytes:
        try:
            return hashlib.scrypt(
                password,
                salt=salt,
                n=cost,
                r=block_size,
                p=parallelism,
                dklen=key_length,
                maxmem=max_memory,
            )
        except ValueError as err:
            msg = "captcha challenge has unusable scrypt parameters"
            raise MTAInvalidResponseError(msg) from err

    return derive


# --- ALTCHA v1 ----------------------------------------------------------------


def _solve_v1(challenge: Mapping[str, Any], deadline: float, max_counter: int) -> int:
    algorithm = challenge.get("algorithm")
    if not isinstance(algorithm, str) or algorithm not in _V1_HASHES:
        raise _unsupported(algorithm)
    new_hash = _V1_HASHES[algorithm]
    target = _hex_field(challenge, "challenge")
    salt = challenge.get("salt")
    if not isinstance(salt, str) or not salt:
        msg = "captcha challenge has no salt"
        raise MTAInvalidResponseError(msg)
    if not isinstance(challenge.get("signature"), str):
        msg = "captcha challenge has no signature"
        raise MTAInvalidResponseError(msg)
    # The city writes "maxnumber"; the altcha package writes "maxNumber".
    key = "maxnumber" if "maxnumber" in challenge else "maxNumber"
    max_number = min(_int_field(challenge, key, 0, None), max_counter)
    if len(target) != new_hash(b"").digest_size:
        msg = "captcha challenge does not fit its algorithm"
        raise MTAInvalidResponseError(msg)

    salted = new_hash(salt.encode())
    for start in range(0, max_number + 1, _V1_BATCH):
        if time.monotonic() > deadline:
            msg = f"captcha challenge not solved within the timeout ({start} tries)"
            raise MTAInvalidResponseError(msg)
        for number in range(start, min(start + _V1_BATCH, max_number + 1)):
            attempt = salted.copy()
            attempt.update(str(number).encode())
            if attempt.digest() == target:
                return number
    msg = "captcha challenge has no solution up to its maxnumber"
    raise MTAInvalidResponseError(msg)


# --- shared helpers -------------------------------------------------------------


def _object(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        msg = f"{what} must be an object"
        raise MTAInvalidResponseError(msg)
    return value


def _unsupported(algorithm: object) -> MTAInvalidResponseError:
    if not isinstance(algorithm, str):
        return MTAInvalidResponseError("captcha challenge has no algorithm")
    return MTAInvalidResponseError(f"unsupported captcha algorithm {algorithm[:40]!r}")


def _hex_field(obj: Mapping[str, Any], name: str) -> bytes:
    value = obj.get(name)
    if not isinstance(value, str) or not value or not _HEX.fullmatch(value):
        msg = f"captcha challenge {name} is missing or not hex"
        raise MTAInvalidResponseError(msg)
    if len(value) % 2:
        msg = f"captcha challenge {name} has an odd number of hex digits"
        raise MTAInvalidResponseError(msg)
    return bytes.fromhex(value)


def _int_field(
    obj: Mapping[str, Any],
    name: str,
    low: int,
    high: int | None,
    *,
    default: int | None = None,
) -> int:
    value = obj.get(name)
    if value is None:
        if default is None:
            msg = f"captcha challenge has no {name}"
            raise MTAInvalidResponseError(msg)
        return default
    # JSON numbers may arrive as floats (2.0); booleans are not numbers here.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        msg = f"captcha challenge {name} is not a usable integer"
        raise MTAInvalidResponseError(msg)
    return value


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


def _plain_json(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    msg = f"{type(value).__name__} is not JSON serializable"
    raise TypeError(msg)


# --- the token ------------------------------------------------------------------


def token_expiry(token: str) -> float | None:
    """Return the ``exp`` claim (Unix seconds) of a JWT, without verifying it.

    Args:
        token: the captcha token.

    Returns:
        The expiry, or ``None`` when the token is not a readable JWT or has no
        numeric ``exp``.

    """
    parts = token.split(".")
    if len(parts) != 3:  # noqa: PLR2004
        return None
    body = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.b64decode(body, altchars=b"-_", validate=True))
    except (ValueError, binascii.Error, RecursionError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    try:
        expiry = float(exp)
    except OverflowError:
        return None
    return expiry if math.isfinite(expiry) else None


class CaptchaTokenCache:
    """Keeps one captcha token and fetches a new one before it expires.

    A token counts as valid until ``margin`` seconds before its expiry (the
    JWT's ``exp``, or ``default_ttl`` after the fetch started when it has
    none). Concurrent callers share one fetch, and its outcome: when it fails,
    all of them get its exception.

    The ``exp`` claim is wall time; it is turned into the clock's monotonic
    time once, when the token arrives, and the expiry is judged on that. So a
    jump of the host's wall clock afterwards neither makes a fresh token look
    expired (a needless proof of work) nor an expired one look fresh (a
    refused search).

    :attr:`last_fetch_seconds` is how long the last new token took (the
    challenge, the proof of work and the verification), for diagnostics.

    The token itself never appears in ``repr()``.
    """

    def __init__(
        self,
        *,
        fetch: Callable[[], Awaitable[str]],
        clock: Clock,
        margin: float = 30.0,
        default_ttl: float = 300.0,
    ) -> None:
        """Configure the cache.

        Args:
            fetch: gets a new token (solves a challenge and verifies it).
            clock: where the time is read.
            margin: seconds before expiry at which a token is no longer used.
            default_ttl: lifetime assumed for a token without ``exp``.

        Raises:
            ValueError: ``margin`` is negative or ``default_ttl`` not positive.

        """
        if margin < 0:
            msg = "margin must not be negative"
            raise ValueError(msg)
        if default_ttl <= 0:
            msg = "default_ttl must be positive"
            raise ValueError(msg)
        self._fetch = fetch
        self._clock = clock
        self._margin = margin
        self._default_ttl = default_ttl
        self._token: str | None = None
        # On the clock's monotonic time (see the class docstring).
        self._expires: float | None = None
        self._lock = asyncio.Lock()
        # Counts finished fetches, so that a caller who waited for the lock can
        # tell that a fetch completed meanwhile and share its outcome.
        self._finished = 0
        self._error: Exception | None = None
        self.last_fetch_seconds: float | None = None
        """Seconds the last successful fetch took, by the performance counter.

        Real computing and waiting time (not the clock's, which a test may
        move), rounded to milliseconds; None before the first new token.
        """

    def __repr__(self) -> str:
        """Describe the cache without revealing the token."""
        return (
            f"{type(self).__name__}(has_token={self._token is not None}, "
            f"expires_at={self.expires_at!r}, margin={self._margin!r})"
        )

    @property
    def expires_at(self) -> float | None:
        """Unix time at which the cached token expires (``None`` without one).

        Derived from the monotonic expiry and the wall clock's time now.
        """
        remaining = self.expires_in()
        return None if remaining is None else self._clock.time() + remaining

    def expires_in(self) -> float | None:
        """Seconds until the cached token expires (``None`` without one)."""
        if self._expires is None:
            return None
        return self._expires - monotonic_of(self._clock)

    def needs_refresh(self, within: float) -> bool:
        """Tell whether the token is missing or unusable ``within`` seconds from now."""
        if self._token is None or self._expires is None:
            return True
        return monotonic_of(self._clock) + within >= self._expires - self._margin

    def invalidate(self) -> None:
        """Forget the token, e.g. after the server rejected it."""
        self._token = None
        self._expires = None

    def seed(self, token: str, *, expires_at: float | None = None) -> bool:
        """Use a token kept from before (another run of the same program).

        ``expires_at`` (Unix time) is used only when the token has no readable
        ``exp``. A token that is empty, has no known expiry, or is not usable
        for longer than the margin is refused (False) and nothing changes.
        """
        expiry = token_expiry(token) if token else None
        if expiry is None:
            expiry = expires_at
        if not token or expiry is None or not math.isfinite(expiry):
            return False
        remaining = expiry - self._clock.time()
        if remaining <= self._margin:
            return False
        self._token = token
        self._expires = monotonic_of(self._clock) + remaining
        return True

    def export(self) -> tuple[str, float] | None:
        """The token and its expiry (Unix time), to keep for a later run.

        None when no token is usable for longer than the margin. The token
        is a credential of this client: keep it private.
        """
        expires_at = self.expires_at
        if self._token is None or expires_at is None or self.needs_refresh(0.0):
            return None
        return self._token, expires_at

    async def get(self) -> str:
        """Return a valid token, fetching a new one only when needed."""
        if self._token is not None and not self.needs_refresh(0.0):
            return self._token
        return await self._shared_fetch()

    async def refresh(self) -> str:
        """Fetch a new token now, e.g. ahead of expiry while the caller is idle.

        A fetch already under way counts as the new one.
        """
        return await self._shared_fetch()

    async def _shared_fetch(self) -> str:
        finished_before = self._finished
        async with self._lock:
            if self._finished != finished_before:
                # A fetch finished while this caller waited: share its outcome.
                if self._error is not None:
                    raise self._error
                if self._token is not None:
                    return self._token
            started = monotonic_of(self._clock)
            timer = time.perf_counter()
            try:
                token = await self._fetch_checked()
            except Exception as err:
                self._finished += 1
                self._error = err
                raise
            self.last_fetch_seconds = round(time.perf_counter() - timer, 3)
            expiry = token_expiry(token)
            self._token = token
            self._expires = (
                started + self._default_ttl
                if expiry is None
                # The one conversion of the wall-time exp to monotonic time.
                else monotonic_of(self._clock) + (expiry - self._clock.time())
            )
            self._finished += 1
            self._error = None
            return token

    async def _fetch_checked(self) -> str:
        token = await self._fetch()
        if not token:
            msg = "the captcha token is empty"
            raise MTAInvalidResponseError(msg)
        return token
