"""The simulator's Munich catalogue: offices, services, relations and scopes.

The data lives in ``data/catalogue.json`` (a small, hand-picked subset of the
city's catalogue with real ids and names). This module loads it and renders
the city's ``/offices-and-services/`` answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
import json
from typing import Any

__all__ = ["Catalogue", "Office", "Relation", "Scope", "Service", "load_catalogue"]


@dataclass(frozen=True, slots=True)
class Scope:
    """A ZMS scope: the booking settings of an office.

    ``data`` is the city's ThinnedScope object as served to clients.
    """

    id: int
    data: dict[str, Any]

    @property
    def captcha_required(self) -> bool:
        """Whether calendar and reserve need a captcha token."""
        return bool(self.data["captchaActivatedRequired"])

    @property
    def reservation_minutes(self) -> int:
        """Minutes a reservation is held."""
        return int(self.data["reservationDuration"] or 15)

    @property
    def activation_minutes(self) -> int:
        """Minutes to click the activation link."""
        return int(self.data["activationDuration"] or 30)

    @property
    def appointments_per_mail(self) -> int | None:
        """How many preconfirmed/confirmed appointments one e-mail may hold."""
        value = self.data.get("appointmentsPerMail")
        if value in (None, "", "0", 0):
            return None
        return int(value)

    @property
    def slots_per_appointment(self) -> int | None:
        """Maximal slot units of one appointment, if limited."""
        value = self.data.get("slotsPerAppointment")
        if value in (None, "", "0", 0):
            return None
        return int(value)

    @property
    def whitelisted_mails(self) -> frozenset[str]:
        """Addresses exempt from the per-mail limit."""
        value = self.data.get("whitelistedMails") or ""
        return frozenset(m.strip().lower() for m in value.split(",") if m.strip())


@dataclass(frozen=True, slots=True)
class Office:
    """An office (the city's "provider"), with its raw catalogue entry."""

    id: int
    name: str
    slot_minutes: int
    scope: Scope
    data: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """Return the city's Office object."""
        body = dict(self.data)
        body["scope"] = self.scope.data
        return body


@dataclass(frozen=True, slots=True)
class Service:
    """A service (the city's "request")."""

    id: int
    name: str
    max_quantity: int
    combinable: tuple[int, ...]
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Relation:
    """An office offering a service: ``slots`` units per unit of quantity."""

    office_id: int
    service_id: int
    slots: int
    max_quantity: int | None
    public: bool

    def to_json(self) -> dict[str, Any]:
        """Return the city's Relation object."""
        return {
            "officeId": self.office_id,
            "serviceId": self.service_id,
            "slots": self.slots,
            "public": self.public,
            "maxQuantity": self.max_quantity,
        }


class Catalogue:
    """Offices, services, relations and scopes, indexed for the simulator."""

    def __init__(self, raw: dict[str, Any]) -> None:
        """Index the raw catalogue (the format of ``data/catalogue.json``)."""
        scopes = {
            int(s["id"]): Scope(id=int(s["id"]), data=_scope_json(s))
            for s in raw["scopes"]
        }
        self.offices: dict[int, Office] = {}
        for o in raw["offices"]:
            data = {k: v for k, v in o.items() if k != "scope"}
            self.offices[int(o["id"])] = Office(
                id=int(o["id"]),
                name=str(o["name"]),
                slot_minutes=int(o["slotTimeInMinutes"]),
                scope=scopes[int(o["scope"])],
                data=data,
            )
        self.relations: dict[tuple[int, int], Relation] = {}
        for r in raw["relations"]:
            rel = Relation(
                office_id=int(r["officeId"]),
                service_id=int(r["serviceId"]),
                slots=int(r["slots"]),
                max_quantity=r.get("maxQuantity"),
                public=bool(r.get("public", True)),
            )
            self.relations[rel.office_id, rel.service_id] = rel
        self.services: dict[int, Service] = {
            int(s["id"]): Service(
                id=int(s["id"]),
                name=str(s["name"]),
                max_quantity=int(s.get("maxQuantity") or 1),
                combinable=tuple(int(c) for c in s.get("combinable", [])),
                data=s,
            )
            for s in raw["services"]
        }

    def relation(self, office_id: int, service_id: int) -> Relation | None:
        """Return the relation of an office and a service, if offered."""
        return self.relations.get((office_id, service_id))

    def offices_for(self, service_id: int) -> list[int]:
        """Return the ids of the offices offering a service, in catalogue order."""
        return [o for o in self.offices if (o, service_id) in self.relations]

    def units_needed(self, office_id: int, services: list[tuple[int, int]]) -> int:
        """Return the slot units an office needs for ``(serviceId, count)`` pairs."""
        total = 0
        for service_id, count in services:
            relation = self.relations[office_id, service_id]
            total += relation.slots * count
        return total

    def _combinable(self, service: Service) -> dict[str, dict[str, list[int]]]:
        # MapperService::mapServicesWithCombinations: each combinable service
        # maps to the offices that offer both it and this service.
        own = set(self.offices_for(service.id))
        result: dict[str, dict[str, list[int]]] = {}
        for other in service.combinable:
            if other not in self.services:
                continue
            both = [o for o in self.offices_for(other) if o in own]
            if both:
                result[str(len(result) + 1)] = {str(other): both}
        return result

    def offices_and_services(self) -> dict[str, Any]:
        """Return the city's ``/offices-and-services/`` body."""
        services = []
        for service in self.services.values():
            if not self.offices_for(service.id):
                continue  # only services having a relation are listed
            body = dict(service.data)
            body["combinable"] = self._combinable(service) or []
            services.append(body)
        return {
            "offices": [o.to_json() for o in self.offices.values()],
            "services": services,
            "relations": [r.to_json() for r in self.relations.values() if r.public],
        }


def _scope_json(raw: dict[str, Any]) -> dict[str, Any]:
    keys = (
        "id",
        "provider",
        "shortName",
        "emailFrom",
        "emailRequired",
        "telephoneActivated",
        "telephoneRequired",
        "customTextfieldActivated",
        "customTextfieldRequired",
        "customTextfieldLabel",
        "customTextfield2Activated",
        "customTextfield2Required",
        "customTextfield2Label",
        "captchaActivatedRequired",
        "infoForAppointment",
        "infoForAllAppointments",
        "slotsPerAppointment",
        "appointmentsPerMail",
        "whitelistedMails",
        "reservationDuration",
        "activationDuration",
        "hint",
    )
    return {k: raw.get(k) for k in keys}


def load_catalogue() -> Catalogue:
    """Load the packaged Munich catalogue."""
    text = (
        resources.files("mta_client.simulator")
        .joinpath("data/catalogue.json")
        .read_text(encoding="utf-8")
    )
    return Catalogue(json.loads(text))
