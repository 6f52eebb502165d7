"""A catalogue answer kept from an earlier run: ``seed_catalogue``, ``on_catalogue``."""

from __future__ import annotations

import copy
import math
from typing import TYPE_CHECKING, Any

import pytest

from mta_client.exceptions import MTAInvalidResponseError

from .helpers import load_fixture, route

if TYPE_CHECKING:
    from aioresponses import aioresponses

    from mta_client import MTAClient
    from tests.conftest import FakeClock

CATALOGUE = "offices-and-services/"


def answer() -> dict[str, Any]:
    data: dict[str, Any] = load_fixture("offices_and_services.json")
    return data


def requests_to(responses: aioresponses, path: str) -> int:
    return sum(
        len(calls) for (_, url), calls in responses.requests.items() if path in str(url)
    )


async def test_a_seeded_catalogue_is_used_until_it_is_as_old_as_the_ttl(
    client: MTAClient, responses: aioresponses, clock: FakeClock
) -> None:
    responses.get(route(CATALOGUE), payload=answer(), repeat=True)
    fetched = await client.get_catalogue(refresh=True)
    assert requests_to(responses, CATALOGUE) == 1

    # Kept by an earlier run, ten seconds short of the TTL.
    assert client.seed_catalogue(
        answer(), fetched_at=clock.now - client.catalogue_ttl + 10
    )
    seeded = await client.get_catalogue()
    assert seeded == fetched  # the same parser as a fresh answer
    assert requests_to(responses, CATALOGUE) == 1
    clock.advance(10)
    await client.get_catalogue()
    assert requests_to(responses, CATALOGUE) == 2


@pytest.mark.parametrize(
    "age",
    [3600.0, 3600.5, -1.0, math.inf, -math.inf, math.nan],
    ids=["as old as the ttl", "older", "from the future", "inf", "-inf", "nan"],
)
async def test_an_old_or_odd_fetch_time_is_refused(
    client: MTAClient, responses: aioresponses, clock: FakeClock, age: float
) -> None:
    responses.get(route(CATALOGUE), payload=answer())
    assert client.catalogue_ttl == 3600.0
    assert not client.seed_catalogue(answer(), fetched_at=clock.now - age)
    await client.get_catalogue()
    assert requests_to(responses, CATALOGUE) == 1


@pytest.mark.parametrize("fetched_at", [True, "yesterday", None])
async def test_a_fetch_time_that_is_no_number_is_refused(
    client: MTAClient, fetched_at: Any
) -> None:
    assert not client.seed_catalogue(answer(), fetched_at=fetched_at)


def _without_offices(data: dict[str, Any]) -> Any:
    del data["offices"]
    return data


def _office_without_id(data: dict[str, Any]) -> Any:
    data["offices"][0]["id"] = "ten"
    return data


@pytest.mark.parametrize(
    "damage",
    [
        lambda _data: None,
        lambda _data: [],
        lambda _data: "offices",
        _without_offices,
        _office_without_id,
    ],
    ids=["null", "a list", "a string", "no offices", "an office id of text"],
)
async def test_data_that_is_no_catalogue_is_refused_as_an_answer_would_be(
    client: MTAClient, responses: aioresponses, clock: FakeClock, damage: Any
) -> None:
    bad = damage(copy.deepcopy(answer()))
    with pytest.raises(MTAInvalidResponseError):
        client.seed_catalogue(bad, fetched_at=clock.now)
    # Nothing changed: the client asks the server.
    responses.get(route(CATALOGUE), payload=answer())
    await client.get_catalogue()
    assert requests_to(responses, CATALOGUE) == 1


async def test_on_catalogue_gets_each_fetched_answer(
    client: MTAClient, responses: aioresponses, clock: FakeClock
) -> None:
    kept: list[tuple[Any, float]] = []

    async def keep(data: Any, fetched_at: float) -> None:
        kept.append((data, fetched_at))

    client.on_catalogue = keep
    responses.get(route(CATALOGUE), payload=answer(), repeat=True)
    await client.get_catalogue()
    await client.get_catalogue()  # the client's copy: nothing new to keep
    assert kept == [(answer(), clock.now)]
    clock.advance(5)
    await client.get_catalogue(refresh=True)
    assert kept[1] == (answer(), clock.now)
    # A seeded one is not handed back.
    assert client.seed_catalogue(answer(), fetched_at=clock.now)
    await client.get_catalogue()
    assert len(kept) == 2


async def test_a_broken_answer_is_not_handed_to_on_catalogue(
    client: MTAClient, responses: aioresponses
) -> None:
    kept: list[Any] = []

    async def keep(data: Any, _fetched_at: float) -> None:
        kept.append(data)

    client.on_catalogue = keep
    responses.get(route(CATALOGUE), payload={"offices": "none"})
    with pytest.raises(MTAInvalidResponseError):
        await client.get_catalogue()
    assert kept == []
