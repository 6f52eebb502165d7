"""Book the earliest free slot for a residence registration.

This makes a real booking when pointed at the city's server, so it insists on
an explicit base URL. Try it against the local simulator::

    mta simulate --port 8080 &
    python examples/book.py http://127.0.0.1:8080/buergeransicht/api/citizen/ Huber anna@example.org

The city then e-mails an activation link, which the person must click.
"""

import asyncio
import sys

from mta_client import ContactDetails, MTAClient, MTASlotUnavailableError, book_slot

WOHNSITZANMELDUNG = 1063475


async def book(base_url: str, family_name: str, email: str) -> int:
    """Reserve, fill in and pre-confirm the earliest slot; return an exit code."""
    contact = ContactDetails(family_name=family_name, email=email)
    async with MTAClient(base_url=base_url) as client:
        catalogue = await client.get_catalogue()
        offices = [o.id for o in catalogue.offices_offering([WOHNSITZANMELDUNG])][:3]
        calendar = await client.get_available_calendar(
            office_ids=offices, services={WOHNSITZANMELDUNG: 1}
        )
        for slot in calendar.slots:
            try:
                # The library's one booking flow: it cancels the reservation
                # itself when filling in or pre-confirming fails.
                booked = await book_slot(
                    client,
                    office_id=slot.office_id,
                    services={WOHNSITZANMELDUNG: 1},
                    slot=slot,
                    contact=contact,
                )
            except MTASlotUnavailableError:
                continue  # someone was faster: try the next slot
            print(f"pre-confirmed {booked.process_id} at {slot.start.isoformat()};")
            print(
                "now click the activation link in the city's e-mail by "
                f"{booked.activation_deadline:%H:%M} UTC"
            )
            return 0
    print("no free slot")
    return 3


if __name__ == "__main__":
    if len(sys.argv) != 4:  # noqa: PLR2004
        sys.exit(__doc__)
    sys.exit(asyncio.run(book(*sys.argv[1:])))
