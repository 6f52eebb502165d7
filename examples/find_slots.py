"""Find the earliest free slots for a residence registration (read-only).

Run against the local simulator (``mta simulate --port 8080``)::

    MTA_BASE_URL=http://127.0.0.1:8080/buergeransicht/api/citizen/ python examples/find_slots.py

Without ``MTA_BASE_URL`` it asks the city's server: a handful of requests.
"""

import asyncio
import os

from mta_client import DEFAULT_BASE_URL, MTAClient

WOHNSITZANMELDUNG = 1063475


async def main() -> None:
    """Print the bookable days and the first free slots."""
    async with MTAClient(
        base_url=os.environ.get("MTA_BASE_URL", DEFAULT_BASE_URL)
    ) as client:
        catalogue = await client.get_catalogue()
        offices = catalogue.offices_offering([WOHNSITZANMELDUNG])[:3]
        calendar = await client.get_available_calendar(
            office_ids=[office.id for office in offices],
            services={WOHNSITZANMELDUNG: 1},
        )
        print("bookable days:", [day.isoformat() for day in calendar.bookable_dates])
        for slot in calendar.slots[:5]:
            office = catalogue.office(slot.office_id)
            print(slot.start.isoformat(), office.name if office else slot.office_id)


if __name__ == "__main__":
    asyncio.run(main())
