"""Tests of the ALTCHA solvers and the captcha token cache.

Challenges come from the official ``altcha`` package, and its verifiers must
accept every payload the solvers produce.
"""

from __future__ import annotations

import asyncio
import base64
import ctypes
from datetime import UTC, datetime, timedelta
import hashlib
import json
import threading
import time
from types import MappingProxyType
from typing import Any, TypedDict, cast

import altcha
import altcha.v1
import pytest

from mta_client import captcha
from mta_client.captcha import (
    CaptchaTokenCache,
    solve_challenge,
    solve_challenge_async,
    token_expiry,
)
from mta_client.exceptions import MTAInvalidResponseError
from tests.conftest import FakeClock

HMAC_KEY = "test-hmac-key"


def decode(payload: str) -> dict[str, Any]:
    """The JSON object inside a payload (standard base64 alphabet)."""
    return cast("dict[str, Any]", json.loads(base64.b64decode(payload, validate=True)))


def v2_challenge(
    algorithm: str = "SHA-256", cost: int = 100, **kwargs: Any
) -> dict[str, Any]:
    challenge = altcha.create_challenge(
        algorithm,
        cost,
        hmac_secret=HMAC_KEY,
        expires_at=int(time.time()) + 600,
        **kwargs,
    )
    return challenge.to_dict()


def assert_v2_accepted(challenge: dict[str, Any], payload: str) -> dict[str, Any]:
    result = altcha.verify_solution(payload, HMAC_KEY)
    assert result.verified, vars(result)
    decoded = decode(payload)
    assert decoded["challenge"] == challenge
    assert set(decoded["solution"]) == {"counter", "derivedKey", "time"}
    solution: dict[str, Any] = decoded["solution"]
    return solution


def reference_key(parameters: dict[str, Any], counter: int) -> str:
    """The derived key the altcha package computes for a counter."""
    params = altcha.ChallengeParameters.from_dict(parameters)
    password = bytes.fromhex(parameters["nonce"]) + counter.to_bytes(4, "big")
    return altcha.derive_key_sha(
        params, bytes.fromhex(parameters["salt"]), password
    ).hex()


@pytest.fixture(params=["openssl", "python"])
def derivation(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test with the OpenSSL accelerated and with the pure Python SHA path."""
    if request.param == "python":
        monkeypatch.setattr(captcha, "_openssl_iterated_hash", lambda _algorithm: None)
    elif captcha._openssl_iterated_hash("SHA-256") is None:
        pytest.skip("this interpreter's OpenSSL is not reachable through ctypes")
    return str(request.param)


# --- ALTCHA v2 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "cost", "extra"),
    [
        ("SHA-256", 1000, {}),
        ("SHA-384", 100, {}),
        ("SHA-512", 100, {}),
        ("SHA-512", 50, {"key_length": 64}),
        ("SHA-256", 50, {"key_length": 16}),
    ],
)
def test_v2_sha_solution_is_accepted_by_altcha(
    derivation: str, algorithm: str, cost: int, extra: dict[str, Any]
) -> None:
    challenge = v2_challenge(algorithm, cost, **extra)

    solution = assert_v2_accepted(challenge, solve_challenge(challenge))

    assert solution["derivedKey"].startswith("00")
    assert len(solution["derivedKey"]) == 2 * extra.get("key_length", 32)


@pytest.mark.parametrize(
    ("algorithm", "cost", "extra"),
    [
        ("PBKDF2/SHA-256", 100, {}),
        ("PBKDF2/SHA-384", 50, {}),
        ("PBKDF2/SHA-512", 50, {"key_length": 48}),
        ("SCRYPT", 16, {"memory_cost": 1, "parallelism": 2}),
        ("SCRYPT", 16, {}),
    ],
)
def test_v2_kdf_solution_is_accepted_by_altcha(
    algorithm: str, cost: int, extra: dict[str, Any]
) -> None:
    challenge = v2_challenge(algorithm, cost, **extra)

    solution = assert_v2_accepted(challenge, solve_challenge(challenge))

    assert solution["derivedKey"].startswith("00")
    assert len(solution["derivedKey"]) == 2 * extra.get("key_length", 32)


@pytest.mark.parametrize("prefix", ["0", "abc", "f1e"])
def test_v2_odd_length_prefix(derivation: str, prefix: str) -> None:
    challenge = v2_challenge("SHA-256", 20, key_prefix=prefix)

    solution = assert_v2_accepted(challenge, solve_challenge(challenge))

    assert solution["derivedKey"].startswith(prefix)


def test_v2_finds_the_first_matching_counter(derivation: str) -> None:
    # Deterministic mode: the prefix is half the key of counter 37, so no
    # earlier counter can match and any derivation slip would be caught.
    challenge = v2_challenge("SHA-256", 10, counter=37)

    solution = assert_v2_accepted(challenge, solve_challenge(challenge))

    assert solution["counter"] == 37


def test_v2_with_key_signature_is_accepted() -> None:
    challenge = altcha.create_challenge(
        "SHA-256", 10, counter=5, hmac_secret=HMAC_KEY, hmac_key_secret="key-secret"
    ).to_dict()

    payload = solve_challenge(challenge)

    result = altcha.verify_solution(payload, HMAC_KEY, hmac_key_secret="key-secret")
    assert result.verified
    assert decode(payload)["solution"]["counter"] == 5


def test_v2_city_shape_is_passed_through_unchanged(derivation: str) -> None:
    # The city sends every optional parameter, null or not, in its own order.
    parameters = v2_challenge("SHA-256", 50)["parameters"]
    city: dict[str, Any] = {
        "parameters": {
            "algorithm": "SHA-256",
            "nonce": parameters["nonce"],
            "salt": parameters["salt"],
            "cost": 50,
            "keyLength": 32,
            "keyPrefix": "0A",
            "keySignature": None,
            "memoryCost": None,
            "parallelism": None,
            "expiresAt": 1778916660,
            "data": None,
        },
        "signature": "ab" * 32,
    }

    decoded = decode(solve_challenge(city))

    assert json.dumps(decoded["challenge"]) == json.dumps(city)
    solution = decoded["solution"]
    # The verifier compares lowercase hex, whatever case the prefix has.
    assert solution["derivedKey"].startswith("0a")
    assert solution["derivedKey"] == reference_key(
        city["parameters"], solution["counter"]
    )
    assert isinstance(solution["time"], int)
    assert solution["time"] >= 0


def test_v2_defaults_key_length_and_prefix_like_altcha() -> None:
    challenge = v2_challenge("SHA-256", 30)
    del challenge["parameters"]["keyLength"]
    del challenge["parameters"]["keyPrefix"]

    solution = decode(solve_challenge(challenge))["solution"]

    assert solution["derivedKey"].startswith("00")
    assert len(solution["derivedKey"]) == 64
    assert solution["derivedKey"] == reference_key(
        challenge["parameters"], solution["counter"]
    )


def test_v2_accepts_integral_floats_and_other_mappings() -> None:
    challenge = v2_challenge("SHA-256", 30)
    original = dict(challenge["parameters"])
    challenge["parameters"]["cost"] = 30.0
    frozen = MappingProxyType(
        {**challenge, "parameters": MappingProxyType(challenge["parameters"])}
    )

    decoded = decode(solve_challenge(frozen))

    assert decoded["challenge"] == challenge
    solution = decoded["solution"]
    assert solution["derivedKey"] == reference_key(original, solution["counter"])


def test_payload_is_compact_standard_base64() -> None:
    challenge = v2_challenge("SHA-256", 10, data={"text": "\u00fc?>" * 20})

    payload = solve_challenge(challenge)

    # The data makes 62 and 63 appear in base64, which only "+" and "/" encode.
    assert "+" in payload or "/" in payload
    text = base64.b64decode(payload, validate=True).decode()
    assert ", " not in text
    assert ": " not in text
    assert altcha.verify_solution(payload, HMAC_KEY).verified


# --- ALTCHA v1 ------------------------------------------------------------------


def v1_challenge(*, city_key: bool = True, **kwargs: Any) -> dict[str, Any]:
    options: dict[str, Any] = {"hmac_key": HMAC_KEY, "max_number": 5000} | kwargs
    challenge = altcha.v1.create_challenge(**options).to_dict()
    if city_key:
        # The city writes "maxnumber"; the altcha package "maxNumber".
        challenge["maxnumber"] = challenge.pop("maxNumber")
    return challenge


@pytest.mark.parametrize("algorithm", ["SHA-1", "SHA-256", "SHA-512"])
@pytest.mark.parametrize("city_key", [True, False])
def test_v1_solution_is_accepted_by_altcha(algorithm: str, city_key: bool) -> None:
    challenge = v1_challenge(algorithm=algorithm, number=1234, city_key=city_key)

    payload = solve_challenge(challenge)

    assert altcha.v1.verify_solution(payload, HMAC_KEY) == (True, None)
    decoded = decode(payload)
    assert decoded == {
        "algorithm": algorithm,
        "challenge": challenge["challenge"],
        "number": 1234,
        "salt": challenge["salt"],
        "signature": challenge["signature"],
        "took": decoded["took"],
    }
    assert isinstance(decoded["took"], int)


def test_v1_with_expiring_salt_is_accepted() -> None:
    expires = datetime.now(UTC) + timedelta(minutes=5)
    challenge = v1_challenge(expires=expires, max_number=100_000)

    payload = solve_challenge(challenge)

    assert "?expires=" in challenge["salt"]
    assert altcha.v1.verify_solution(payload, HMAC_KEY) == (True, None)


def test_v1_number_beyond_one_batch() -> None:
    challenge = v1_challenge(number=40_000, max_number=50_000)

    assert decode(solve_challenge(challenge))["number"] == 40_000


def test_v1_without_solution_up_to_maxnumber() -> None:
    challenge = v1_challenge(number=500)
    challenge["maxnumber"] = 499

    with pytest.raises(MTAInvalidResponseError, match="no solution"):
        solve_challenge(challenge)


def test_v1_respects_max_counter() -> None:
    challenge = v1_challenge(number=500)

    with pytest.raises(MTAInvalidResponseError, match="no solution"):
        solve_challenge(challenge, max_counter=499)
    assert decode(solve_challenge(challenge, max_counter=500))["number"] == 500


def test_v1_respects_time_limit() -> None:
    challenge = v1_challenge(number=10_000_000, max_number=10_000_000)

    started = time.monotonic()
    with pytest.raises(MTAInvalidResponseError, match="timeout"):
        solve_challenge(challenge, time_limit=0.05)
    assert time.monotonic() - started < 2


# --- malformed challenges -------------------------------------------------------


def _v2(**parameters: Any) -> dict[str, Any]:
    base = {
        "algorithm": "SHA-256",
        "nonce": "00112233445566778899aabbccddeeff",
        "salt": "ffeeddccbbaa99887766554433221100",
        "cost": 10,
        "keyLength": 32,
        "keyPrefix": "00",
    }
    return {"parameters": base | parameters, "signature": "ab" * 32}


def _without(challenge: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in challenge.items() if k != key}


def _v2_without(key: str) -> dict[str, Any]:
    challenge = _v2()
    challenge["parameters"] = _without(challenge["parameters"], key)
    return challenge


V1 = {
    "algorithm": "SHA-256",
    "challenge": hashlib.sha256(b"salt0123456789&42").hexdigest(),
    "maxnumber": 100,
    "salt": "salt0123456789&",
    "signature": "ab" * 32,
}


@pytest.mark.parametrize(
    ("challenge", "message"),
    [
        ([], "must be an object"),
        ({}, "algorithm"),
        ({"parameters": [1, 2]}, "parameters must be an object"),
        (_without(_v2(), "signature"), "no signature"),
        (_v2(algorithm="ARGON2ID"), "unsupported captcha algorithm 'ARGON2ID'"),
        (_v2(algorithm="sha-256"), "unsupported"),
        (_v2(algorithm="SHA-1"), "unsupported"),
        (_v2_without("algorithm"), "no algorithm"),
        (_v2(algorithm=["SHA-256"]), "no algorithm"),
        (_v2_without("nonce"), "nonce is missing"),
        (_v2(nonce="zz"), "nonce is missing or not hex"),
        (_v2(nonce="00 11"), "nonce is missing or not hex"),
        (_v2(nonce="abc"), "odd number"),
        (_v2(salt=""), "salt is missing"),
        (_v2_without("cost"), "no cost"),
        (_v2(cost=0), "cost is not a usable integer"),
        (_v2(cost="10"), "cost is not a usable integer"),
        (_v2(cost=True), "cost is not a usable integer"),
        (_v2(cost=10.5), "cost is not a usable integer"),
        (_v2(cost=10**7), "cost is not a usable integer"),
        (_v2(keyLength=0), "keyLength"),
        (_v2(keyPrefix="xyz"), "keyPrefix is not hex"),
        (_v2(keyPrefix=0), "keyPrefix is not hex"),
        (_v2(keyPrefix="0" * 65), "longer than its key"),
        (_v2(keyLength=4, keyPrefix="0" * 9), "longer than its key"),
        (_v2(algorithm="SHA-512", keyLength=100, keyPrefix="0" * 129), "longer"),
        (_v2(algorithm="SCRYPT", cost=1000), "scrypt"),
        (_v2(algorithm="SCRYPT", cost=2**19, memoryCost=8), "scrypt"),
        (_v2(algorithm="SCRYPT", cost=16, parallelism=17), "parallelism"),
        (_v2(data={"when": {1, 2}}), "not JSON"),
        (_v2(data={"x": float("nan")}), "not JSON"),
        (_without(V1, "algorithm"), "no algorithm"),
        (V1 | {"algorithm": "MD5"}, "unsupported captcha algorithm 'MD5'"),
        (V1 | {"algorithm": "SHA-512"}, "does not fit its algorithm"),
        (V1 | {"challenge": "not hex"}, "challenge is missing or not hex"),
        (V1 | {"salt": ""}, "no salt"),
        (V1 | {"salt": 5}, "no salt"),
        (_without(V1, "signature"), "no signature"),
        (_without(V1, "maxnumber"), "no maxNumber"),
        (V1 | {"maxnumber": -1}, "maxnumber is not a usable integer"),
    ],
)
def test_malformed_challenges_are_rejected(challenge: Any, message: str) -> None:
    with pytest.raises(MTAInvalidResponseError, match=message):
        solve_challenge(challenge)


def test_v2_reference_challenge_is_valid() -> None:
    challenge = _v2()

    solution = decode(solve_challenge(challenge))["solution"]

    assert solution["derivedKey"].startswith("00")
    assert solution["derivedKey"] == reference_key(
        challenge["parameters"], solution["counter"]
    )


def test_v1_reference_challenge_is_valid() -> None:
    # The malformed cases above only break one field of this one.
    assert decode(solve_challenge(V1))["number"] == 42


def test_v2_unsolvable_within_max_counter(derivation: str) -> None:
    with pytest.raises(MTAInvalidResponseError, match="no solution"):
        solve_challenge(_v2(keyPrefix="ffffffff"), max_counter=20)


def test_v2_unsolvable_within_time_limit(derivation: str) -> None:
    started = time.monotonic()
    with pytest.raises(MTAInvalidResponseError, match="timeout"):
        solve_challenge(_v2(keyPrefix="f" * 16), time_limit=0.05)
    assert time.monotonic() - started < 2


# --- the OpenSSL fast path ------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["SHA-256", "SHA-384", "SHA-512"])
@pytest.mark.parametrize("rounds", [1, 2, 1000])
def test_openssl_path_matches_hashlib(algorithm: str, rounds: int) -> None:
    openssl = captcha._openssl_iterated_hash(algorithm)
    if openssl is None:
        pytest.skip("this interpreter's OpenSSL is not reachable through ctypes")
    new_hash = getattr(hashlib, algorithm.replace("-", "").lower())
    data = bytes(range(52))
    expected = new_hash(data).digest()
    for _ in range(rounds - 1):
        expected = new_hash(expected).digest()

    assert openssl(data, rounds) == expected[:32]


def test_openssl_unreachable_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_library(_name: str) -> None:
        raise OSError

    monkeypatch.setattr(ctypes, "CDLL", no_library)
    captcha._openssl_iterated_hash.cache_clear()
    try:
        assert captcha._openssl_iterated_hash("SHA-256") is None
        challenge = v2_challenge("SHA-256", 20)
        assert_v2_accepted(challenge, solve_challenge(challenge))
    finally:
        captcha._openssl_iterated_hash.cache_clear()


def test_openssl_disagreeing_with_hashlib_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(captcha._SHA_HASHES, "SHA-256", hashlib.sha3_256)
    captcha._openssl_iterated_hash.cache_clear()
    try:
        assert captcha._openssl_iterated_hash("SHA-256") is None
    finally:
        captcha._openssl_iterated_hash.cache_clear()


class FakeLibcrypto:
    """Stands in for libcrypto; its EVP_BytesToKey chains SHA-256 in Python."""

    def __init__(
        self, *, fetch: bool = True, digest: int = 1, result: int = 32
    ) -> None:
        self.names: list[bytes] = []
        self.EVP_aes_256_ecb = self._function(lambda: 7)
        self.EVP_get_digestbyname = self._function(self._digest_by_name)
        if fetch:
            self.EVP_MD_fetch = self._function(
                lambda _ctx, name, _props: self._digest_by_name(name)
            )
        self.EVP_BytesToKey = self._function(self._bytes_to_key)
        self._digest = digest
        self._result = result

    @staticmethod
    def _function(function: Any) -> Any:
        def wrapper(*args: Any) -> Any:
            return function(*args)

        return wrapper

    def _digest_by_name(self, name: bytes) -> int:
        self.names.append(name)
        return self._digest

    def _bytes_to_key(self, *args: Any) -> int:
        cipher, md, salt, data, size, count, key, iv = args
        assert (cipher, md, salt, iv) == (7, self._digest, None, None)
        digest = hashlib.sha256(data[:size]).digest()
        for _ in range(count - 1):
            digest = hashlib.sha256(digest).digest()
        ctypes.memmove(key, digest, 32)
        return self._result


@pytest.fixture
def libcrypto(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make the OpenSSL loader see ``libcrypto.value`` instead of the real one."""

    class Holder:
        value: FakeLibcrypto = FakeLibcrypto()

    monkeypatch.setattr(ctypes, "CDLL", lambda _name: Holder.value)
    captcha._openssl_iterated_hash.cache_clear()
    yield Holder
    captcha._openssl_iterated_hash.cache_clear()


def test_openssl_without_fetch_uses_digest_by_name(libcrypto: Any) -> None:
    libcrypto.value = FakeLibcrypto(fetch=False)
    challenge = v2_challenge("SHA-256", 30)

    assert_v2_accepted(challenge, solve_challenge(challenge))

    assert libcrypto.value.names == [b"SHA256"]


def test_openssl_with_fetch(libcrypto: Any) -> None:
    challenge = v2_challenge("SHA-256", 30)

    assert_v2_accepted(challenge, solve_challenge(challenge))

    assert libcrypto.value.names == [b"SHA256"]


class _Broken(TypedDict, total=False):
    """The libcrypto answers a test breaks (keywords of FakeLibcrypto)."""

    digest: int
    result: int


@pytest.mark.parametrize("broken", [{"digest": 0}, {"result": 0}])
def test_openssl_failing_is_not_used(libcrypto: Any, broken: _Broken) -> None:
    libcrypto.value = FakeLibcrypto(**broken)

    assert captcha._openssl_iterated_hash("SHA-256") is None
    challenge = v2_challenge("SHA-256", 30)
    assert_v2_accepted(challenge, solve_challenge(challenge))


# --- solving off the event loop ---------------------------------------------------


async def test_async_solve_runs_in_another_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[int, dict[str, Any], dict[str, Any]]] = []

    def recorder(challenge: dict[str, Any], **options: Any) -> str:
        seen.append((threading.get_ident(), challenge, options))
        return "cGF5bG9hZA=="

    monkeypatch.setattr(captcha, "solve_challenge", recorder)

    assert (
        await solve_challenge_async({"a": 1}, time_limit=5.0, max_counter=9)
        == "cGF5bG9hZA=="
    )
    assert seen == [(seen[0][0], {"a": 1}, {"time_limit": 5.0, "max_counter": 9})]
    assert seen[0][0] != threading.get_ident()


async def test_event_loop_keeps_running_during_a_solve() -> None:
    challenge = v1_challenge(number=600_000, max_number=700_000)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        payload = await solve_challenge_async(challenge)
    finally:
        tick_task.cancel()
        await asyncio.gather(tick_task, return_exceptions=True)
    elapsed = time.monotonic() - started

    assert altcha.v1.verify_solution(payload, HMAC_KEY) == (True, None)
    # A blocked loop would tick once at most; a free one about every 5-10 ms.
    assert ticks >= 3, (ticks, elapsed)


async def test_async_solve_errors_reach_the_caller() -> None:
    with pytest.raises(MTAInvalidResponseError, match="unsupported"):
        await solve_challenge_async(_v2(algorithm="ARGON2ID"))


# --- token_expiry -----------------------------------------------------------------


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(claims: Any) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = claims if isinstance(claims, str) else b64url(json.dumps(claims).encode())
    return f"{header}.{body}.{b64url(b'signature')}"


@pytest.mark.parametrize("ip", ["1.2.3.4", "10.0.0.12", "192.168.100.200", "::1"])
def test_token_expiry_reads_exp_with_any_padding(ip: str) -> None:
    token = jwt({"ip": ip, "iat": 1778916360, "exp": 1778916660})

    assert token_expiry(token) == 1778916660.0


def test_token_expiry_decodes_url_safe_alphabet() -> None:
    claims = {"note": "??>>~~" * 5, "exp": 1778916660.5}
    body = b64url(json.dumps(claims).encode())
    assert "-" in body or "_" in body

    assert token_expiry(jwt(claims)) == 1778916660.5


@pytest.mark.parametrize(
    "token",
    [
        jwt({"ip": "1.2.3.4", "iat": 1}),
        jwt({"exp": "1778916660"}),
        jwt({"exp": True}),
        jwt({"exp": None}),
        jwt([1778916660]),
        jwt({"exp": 10**400}),
        jwt(b64url(b'{"exp": 1e400}')),
        jwt(b64url(b"not json")),
        jwt(b64url(b"\xff\xfe")),
        jwt("!!!!"),
        jwt(b64url(b"[" * 100_000)),
        "",
        "garbage",
        "a.b",
        "a.b.c.d",
    ],
)
def test_token_expiry_unreadable(token: str) -> None:
    assert token_expiry(token) is None


# --- CaptchaTokenCache ----------------------------------------------------------


class Fetcher:
    """Hands out numbered JWTs that expire ``ttl`` seconds after the fetch."""

    def __init__(self, clock: FakeClock, *, ttl: float | None = 300.0) -> None:
        self.clock = clock
        self.ttl = ttl
        self.calls = 0
        self.gate: asyncio.Event | None = None
        self.fail_next = False

    async def __call__(self) -> str:
        self.calls += 1
        number = self.calls
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            msg = "verification failed"
            raise MTAInvalidResponseError(msg)
        claims: dict[str, Any] = {"n": number, "iat": self.clock.now}
        if self.ttl is not None:
            claims["exp"] = self.clock.now + self.ttl
        return jwt(claims)


def number_of(token: str) -> int:
    body = token.split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))["n"])


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_800_000_000.0)


@pytest.fixture
def fetcher(clock: FakeClock) -> Fetcher:
    return Fetcher(clock)


@pytest.fixture
def cache(clock: FakeClock, fetcher: Fetcher) -> CaptchaTokenCache:
    return CaptchaTokenCache(fetch=fetcher, clock=clock, margin=30.0)


async def test_cache_reuses_token_until_margin_before_expiry(
    cache: CaptchaTokenCache, clock: FakeClock, fetcher: Fetcher
) -> None:
    first = await cache.get()
    assert cache.expires_at == clock.now + 300

    clock.now += 269.9
    assert await cache.get() == first
    assert fetcher.calls == 1

    clock.now += 0.1  # now exactly 30 s (the margin) before expiry
    second = await cache.get()
    assert second != first
    assert number_of(second) == 2
    assert fetcher.calls == 2
    assert cache.expires_at == clock.now + 300


async def test_cache_single_flight(cache: CaptchaTokenCache, fetcher: Fetcher) -> None:
    fetcher.gate = asyncio.Event()
    waiting = asyncio.gather(*(cache.get() for _ in range(25)))
    await asyncio.sleep(0)
    fetcher.gate.set()

    tokens = await waiting

    assert fetcher.calls == 1
    assert set(tokens) == {tokens[0]}
    assert number_of(tokens[0]) == 1


async def test_cache_single_flight_shares_the_failure(
    cache: CaptchaTokenCache, fetcher: Fetcher
) -> None:
    fetcher.gate = asyncio.Event()
    fetcher.fail_next = True
    waiting = asyncio.gather(*(cache.get() for _ in range(10)), return_exceptions=True)
    await asyncio.sleep(0)
    fetcher.gate.set()

    results = await waiting

    assert fetcher.calls == 1
    assert all(isinstance(result, MTAInvalidResponseError) for result in results)
    assert cache.expires_at is None
    # A later caller tries again.
    assert number_of(await cache.get()) == 2


async def test_cache_waiter_fetches_after_a_cancelled_fetch(
    cache: CaptchaTokenCache, fetcher: Fetcher
) -> None:
    fetcher.gate = asyncio.Event()
    first = asyncio.create_task(cache.get())
    await asyncio.sleep(0)
    second = asyncio.create_task(cache.get())
    await asyncio.sleep(0)

    first.cancel()
    await asyncio.gather(first, return_exceptions=True)
    fetcher.gate.set()

    assert number_of(await second) == 2
    assert first.cancelled()


async def test_cache_waiters_share_a_token_close_to_expiry(clock: FakeClock) -> None:
    # A token that is stale on arrival (clock skew, short TTL) still goes to
    # every caller that waited for it, instead of a fetch per caller.
    fetcher = Fetcher(clock, ttl=10.0)
    cache = CaptchaTokenCache(fetch=fetcher, clock=clock, margin=30.0)
    fetcher.gate = asyncio.Event()
    waiting = asyncio.gather(*(cache.get() for _ in range(5)))
    await asyncio.sleep(0)
    fetcher.gate.set()

    tokens = await waiting

    assert fetcher.calls == 1
    assert set(tokens) == {tokens[0]}
    assert cache.needs_refresh(0)
    assert number_of(await cache.get()) == 2


async def test_cache_waiter_does_not_get_an_invalidated_token(
    cache: CaptchaTokenCache, fetcher: Fetcher
) -> None:
    fetcher.gate = asyncio.Event()

    async def get_and_reject() -> str:
        token = await cache.get()
        cache.invalidate()  # e.g. the server answered captchaInvalid
        return token

    first = asyncio.create_task(cache.get())
    await asyncio.sleep(0)
    rejecting = asyncio.create_task(get_and_reject())
    later = asyncio.create_task(cache.get())
    await asyncio.sleep(0)
    fetcher.gate.set()

    tokens = await asyncio.gather(first, rejecting, later)

    assert [number_of(token) for token in tokens] == [1, 1, 2]
    assert fetcher.calls == 2


async def test_cache_invalidate(cache: CaptchaTokenCache, fetcher: Fetcher) -> None:
    first = await cache.get()

    cache.invalidate()

    assert cache.expires_at is None
    assert cache.needs_refresh(0)
    assert await cache.get() != first
    assert fetcher.calls == 2


async def test_cache_refresh_fetches_even_when_fresh(
    cache: CaptchaTokenCache, clock: FakeClock, fetcher: Fetcher
) -> None:
    await cache.get()
    clock.now += 10

    refreshed = await cache.refresh()

    assert number_of(refreshed) == 2
    assert cache.expires_at == clock.now + 300
    assert await cache.get() == refreshed
    assert fetcher.calls == 2


async def test_cache_concurrent_refreshes_share_one_fetch(
    cache: CaptchaTokenCache, fetcher: Fetcher
) -> None:
    fetcher.gate = asyncio.Event()
    waiting = asyncio.gather(cache.refresh(), cache.refresh(), cache.get())
    await asyncio.sleep(0)
    fetcher.gate.set()

    tokens = await waiting

    assert fetcher.calls == 1
    assert set(tokens) == {tokens[0]}


async def test_cache_needs_refresh(cache: CaptchaTokenCache, clock: FakeClock) -> None:
    assert cache.needs_refresh(0)

    await cache.get()

    assert not cache.needs_refresh(0)
    assert not cache.needs_refresh(269)
    assert cache.needs_refresh(270)  # 270 s + 30 s margin reach the expiry
    clock.now += 200
    assert cache.needs_refresh(70)
    assert not cache.needs_refresh(69)


async def test_cache_default_ttl_without_exp(clock: FakeClock) -> None:
    fetcher = Fetcher(clock, ttl=None)
    cache = CaptchaTokenCache(
        fetch=fetcher, clock=clock, margin=10.0, default_ttl=120.0
    )
    fetched_at = clock.now

    await cache.get()

    assert cache.expires_at == fetched_at + 120.0
    clock.now += 109.9
    await cache.get()
    assert fetcher.calls == 1
    clock.now += 0.1
    await cache.get()
    assert fetcher.calls == 2


async def test_cache_opaque_token_uses_default_ttl(clock: FakeClock) -> None:
    async def fetch() -> str:
        return "opaque-token"

    cache = CaptchaTokenCache(fetch=fetch, clock=clock)

    assert await cache.get() == "opaque-token"
    assert cache.expires_at == clock.now + 300.0


async def test_cache_repr_hides_token(cache: CaptchaTokenCache) -> None:
    token = await cache.get()

    text = repr(cache)

    assert token not in text
    assert token.split(".")[1] not in text
    assert "has_token=True" in text


async def test_cache_rejects_empty_token(clock: FakeClock) -> None:
    async def fetch() -> str:
        return ""

    cache = CaptchaTokenCache(fetch=fetch, clock=clock)

    with pytest.raises(MTAInvalidResponseError, match="empty"):
        await cache.get()
    assert cache.expires_at is None


@pytest.mark.parametrize(("margin", "default_ttl"), [(-1.0, 300.0), (30.0, 0.0)])
def test_cache_rejects_bad_settings(
    clock: FakeClock, margin: float, default_ttl: float
) -> None:
    async def fetch() -> str:
        return "token"

    with pytest.raises(ValueError, match="must"):
        CaptchaTokenCache(
            fetch=fetch, clock=clock, margin=margin, default_ttl=default_ttl
        )
