"""The city's rate limiter, reproduced exactly."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .test_routes import assert_error

if TYPE_CHECKING:
    from .conftest import Api


async def test_exact_counting_and_block(make_sim, serve_sim, sim_clock) -> None:
    sim = make_sim(rate_limit=5)
    api = await serve_sim(sim)
    start = int(sim_clock.now)
    for i in range(5):
        status, _, resp = await api.get(
            "nope/" if i == 2 else "captcha-details/"
        )  # failures count too
        assert status == (404 if i == 2 else 200)
        assert resp.headers["X-RateLimit-Limit"] == "5"
        assert resp.headers["X-RateLimit-Remaining"] == str(4 - i)
        assert resp.headers["X-RateLimit-Reset"] == str(start + 60)
    status, body, resp = await api.get("captcha-details/")
    assert status == 429
    assert_error(body, "rateLimitExceeded")
    assert not [h for h in resp.headers if h.startswith("X-RateLimit")]
    assert "X-Frame-Options" not in resp.headers
    # Limited requests do not touch the entry: it expires 60 s after the 5th request.
    sim_clock.advance(59)
    assert (await api.get("captcha-details/"))[0] == 429
    sim_clock.advance(1)
    status, _, resp = await api.get("captcha-details/")
    assert status == 200
    assert resp.headers["X-RateLimit-Remaining"] == "4"
    assert sim.stats.requests_by_ip["127.0.0.1"] == 6
    assert sim.stats.rate_limited_by_ip["127.0.0.1"] == 2
    assert sim.stats.rate_limited == 2


async def test_every_counted_request_restarts_the_window(
    make_sim, serve_sim, sim_clock
) -> None:
    api = await serve_sim(make_sim(rate_limit=3))
    for _ in range(2):
        await api.get("captcha-details/")
        sim_clock.advance(50)
    # 100 s after the first request the entry still lives (TTL rewritten at 50 s)
    _, _, resp = await api.get("captcha-details/")
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    assert (await api.get("captcha-details/"))[0] == 429


async def test_per_ip(make_sim, serve_sim) -> None:
    api = await serve_sim(make_sim(rate_limit=2))
    for ip in ("192.0.2.1", "192.0.2.2"):
        assert (await api.get("captcha-details/", ip=ip))[0] == 200
        assert (await api.get("captcha-details/", ip=ip))[0] == 200
        assert (await api.get("captcha-details/", ip=ip))[0] == 429


async def test_default_limit_is_60(make_sim, serve_sim) -> None:
    sim = make_sim(rate_limit=60)
    api: Api = await serve_sim(sim)
    _, _, resp = await api.get("captcha-details/")
    assert resp.headers["X-RateLimit-Limit"] == "60"
    assert sim.rate_limiter.count("127.0.0.1") == 1
