"""Offer tokens: a short handle on one free slot of one watch.

Alerts and attributes hand out an offer, and ``munich_termin.book`` takes it
back (for example from a Telegram "Book it" button, whose callback data may
be at most 64 bytes). The token spells out the watch (its subentry id), the
office and the start time, so it needs no server-side table and survives a
restart; booking still checks the slot with the city, so a stale or made-up
offer books nothing it should not.
"""

from __future__ import annotations

from datetime import UTC, datetime

MAX_OFFER_BYTES = 64


class InvalidOfferError(ValueError):
    """The text is not an offer this integration handed out."""


def offer_token(watch_id: str, office_id: int, start: datetime) -> str:
    """The offer for a slot: ``<watch>.<office hex>.<unix time hex>``."""
    return f"{watch_id}.{office_id:x}.{int(start.timestamp()):x}"


def parse_offer(token: str) -> tuple[str, int, datetime]:
    """Read an offer back as (watch id, office id, start).

    Raises:
        InvalidOfferError: the text is no offer.

    """
    text = token.strip()
    if not text or len(text.encode()) > MAX_OFFER_BYTES:
        raise InvalidOfferError(token)
    watch_id, _, rest = text.rpartition(".")
    watch_id, _, office = watch_id.rpartition(".")
    try:
        office_id, stamp = int(office, 16), int(rest, 16)
        start = datetime.fromtimestamp(stamp, UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidOfferError(token) from None
    if not watch_id or office_id <= 0 or stamp <= 0:
        raise InvalidOfferError(token)
    return watch_id, office_id, start
