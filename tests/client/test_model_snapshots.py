"""Snapshots of the parsed models: what the client makes of the city's answers.

A change to a model (a renamed field, another default, a time read in
another unit) shows up here as a diff. Inputs are fixed documents: the
project's own fixtures and the seeded simulator's catalogue. Credentials and
personal data are replaced by a marker before anything is written.
"""

from __future__ import annotations

from typing import Any

from aioresponses import aioresponses
from pydantic import BaseModel
import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.amber import AmberSnapshotExtension

from mta_client import MTAClient
from mta_client.client import _parse
from mta_client.models import Appointment, AvailableCalendar, CaptchaDetails, Catalogue
from mta_client.simulator import Simulator

from .helpers import load_fixture, process, route

HIDDEN = "<hidden>"


@pytest.fixture(name="amber")
def amber_fixture(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    # Home Assistant's plugin swaps in its own extension (a `snapshots/`
    # folder); the library's snapshots use syrupy's default `__snapshots__`.
    return snapshot.use_extension(AmberSnapshotExtension)


def dump(model: BaseModel) -> Any:
    """The model as JSON data, with every field hidden from repr masked."""
    data = model.model_dump(mode="json")
    for name, info in type(model).model_fields.items():
        if not info.repr and data.get(name) not in (None, ""):
            data[name] = HIDDEN
    return data


def fixture(name: str) -> Any:
    data = load_fixture(name)
    data.pop("_comment", None)
    return data


def test_simulator_catalogue(amber: SnapshotAssertion) -> None:
    sim = Simulator(scenario="fixed", seed=11)
    catalogue = _parse(Catalogue, sim.catalogue.offices_and_services())
    assert dump(catalogue) == amber


def test_catalogue_fixture(amber: SnapshotAssertion) -> None:
    assert dump(_parse(Catalogue, fixture("offices_and_services.json"))) == amber


def test_catalogue_with_nulls(amber: SnapshotAssertion) -> None:
    assert dump(_parse(Catalogue, fixture("schema/catalogue_nulls.json"))) == amber


def test_calendar_with_nulls(amber: SnapshotAssertion) -> None:
    calendar = _parse(AvailableCalendar, fixture("schema/calendar_nulls.json"))
    assert dump(calendar) == amber
    assert [s.model_dump(mode="json") for s in calendar.slots] == amber(name="slots")


@pytest.mark.parametrize("status", ["reserved", "preconfirmed", "deleted"])
def test_process(amber: SnapshotAssertion, status: str) -> None:
    body = process(
        status,
        familyName="Geheim",
        subRequestCounts=[{"id": 1063441, "name": "Personalausweis", "count": 2}],
    )
    appointment = _parse(Appointment, body)
    data = dump(appointment)
    assert "Geheim" not in str(data)
    assert "a" * 64 not in str(data)
    assert data == amber


def test_process_with_nulls(amber: SnapshotAssertion) -> None:
    appointment = _parse(Appointment, fixture("schema/process_nulls.json"))
    assert dump(appointment) == amber


def test_captcha_details(amber: SnapshotAssertion) -> None:
    details = _parse(CaptchaDetails, fixture("schema/captcha_details.json"))
    assert dump(details) == amber


async def test_captcha_challenge(
    client: MTAClient, responses: aioresponses, amber: SnapshotAssertion
) -> None:
    # Kept raw by the client (the solution must echo it unchanged).
    challenge = fixture("schema/challenge_v2.json")
    responses.get(route("captcha-challenge/"), payload=challenge)
    assert await client.get_captcha_challenge() == amber
