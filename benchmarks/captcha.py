"""Compare the library's ALTCHA v2 solver with the ``altcha`` package's own.

Both solvers get the same challenges (SHA-256, cost 1000, keyPrefix "00",
created and signed by the ``altcha`` package from a fixed seed), in alternating
order, and every solution of ours must pass ``altcha.verify_solution``.

    python benchmarks/captcha.py            # readable summary
    python benchmarks/captcha.py --json     # one JSON line
    python benchmarks/captcha.py --pure-python   # without the OpenSSL fast path
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from typing import Any
from unittest import mock

import altcha
import altcha.v2

from mta_client import captcha

HMAC_KEY = "benchmark-hmac-key"


class _SeededSecrets:
    """Replaces ``secrets`` inside ``altcha.v2`` so nonces and salts repeat."""

    def __init__(self, seed: int) -> None:
        self._random = random.Random(seed)

    def token_bytes(self, size: int) -> bytes:
        return self._random.randbytes(size)


def make_challenges(count: int, seed: int) -> list[altcha.Challenge]:
    expires_at = int(time.time()) + 3600
    with mock.patch.object(altcha.v2, "secrets", _SeededSecrets(seed)):
        return [
            altcha.create_challenge(
                "SHA-256",
                1000,
                key_prefix="00",
                expires_at=expires_at,
                hmac_secret=HMAC_KEY,
            )
            for _ in range(count)
        ]


def time_ours(challenge: altcha.Challenge) -> float:
    as_json = challenge.to_dict()
    started = time.perf_counter()
    payload = captcha.solve_challenge(as_json)
    elapsed = time.perf_counter() - started
    if not altcha.verify_solution(payload, HMAC_KEY).verified:
        sys.exit("the library's solution was rejected by altcha.verify_solution")
    return elapsed


def time_altcha(challenge: altcha.Challenge) -> float:
    started = time.perf_counter()
    solution = altcha.solve_challenge(challenge)
    elapsed = time.perf_counter() - started
    if solution is None:
        sys.exit("altcha.solve_challenge found no solution")
    return elapsed


def run(count: int, seed: int) -> dict[str, Any]:
    challenges = make_challenges(count + 1, seed)
    # One warm-up each, so neither side pays for first-use setup.
    time_ours(challenges[0])
    time_altcha(challenges[0])
    ours: list[float] = []
    theirs: list[float] = []
    for index, challenge in enumerate(challenges[1:]):
        if index % 2:
            theirs.append(time_altcha(challenge))
            ours.append(time_ours(challenge))
        else:
            ours.append(time_ours(challenge))
            theirs.append(time_altcha(challenge))
    ours_ms = statistics.median(ours) * 1000
    altcha_ms = statistics.median(theirs) * 1000
    return {
        "ours_ms_median": round(ours_ms, 3),
        "altcha_ms_median": round(altcha_ms, 3),
        "ratio": round(ours_ms / altcha_ms, 4),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--count", type=int, default=20, help="challenges to solve")
    parser.add_argument("--seed", type=int, default=20250506, help="challenge seed")
    parser.add_argument(
        "--pure-python",
        action="store_true",
        help="measure the pure Python derivation (no OpenSSL fast path)",
    )
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")

    if args.pure_python:
        with mock.patch.object(captcha, "_openssl_iterated_hash", return_value=None):
            result = run(args.count, args.seed)
    else:
        result = run(args.count, args.seed)

    if args.json:
        print(json.dumps(result))
        return
    path = "pure Python" if args.pure_python else "default"
    print(f"ALTCHA v2, SHA-256, cost 1000, keyPrefix 00, {args.count} challenges")
    print(f"  mta_client ({path}): {result['ours_ms_median']:8.2f} ms median")
    print(f"  altcha package:       {result['altcha_ms_median']:8.2f} ms median")
    print(f"  ratio ours/altcha:    {result['ratio']:8.3f}")


if __name__ == "__main__":
    main()
