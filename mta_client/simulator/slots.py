"""Free slot units per office.

Each office has a grid of ``slotTimeInMinutes``. A *unit* is one grid cell,
identified by its start (Unix seconds). A booking of services whose
``relations.slots`` add up to ``k`` needs ``k`` consecutive free units at one
office; it is bookable at ``t`` if the units starting at ``t``, ``t + step``,
… ``t + (k - 1) * step`` are all free.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .catalogue import Catalogue

__all__ = ["SlotStore"]


class SlotStore:
    """Which units are free, and which are held by the simulator's processes."""

    def __init__(self, catalogue: Catalogue) -> None:
        """Start with no free units at any office."""
        self._step = {o.id: o.slot_minutes * 60 for o in catalogue.offices.values()}
        self._free: dict[int, list[int]] = {o: [] for o in self._step}
        self._free_set: dict[int, set[int]] = {o: set() for o in self._step}
        self._held: dict[int, set[int]] = {o: set() for o in self._step}

    def step(self, office_id: int) -> int:
        """Return the grid step of an office in seconds."""
        return self._step[office_id]

    def align(self, office_id: int, timestamp: float) -> int:
        """Round a timestamp down to the office's grid."""
        step = self._step[office_id]
        return int(timestamp) // step * step

    def units(self, office_id: int, start: int, count: int) -> list[int]:
        """Return the ``count`` unit starts of a run beginning at ``start``."""
        step = self._step[office_id]
        return [start + i * step for i in range(count)]

    def release(self, office_id: int, units: Iterable[int]) -> list[int]:
        """Mark units free; return those that were not free before.

        Units held by one of the simulator's processes stay held.
        """
        added: list[int] = []
        free_set = self._free_set[office_id]
        for unit in units:
            if unit in free_set or unit in self._held[office_id]:
                continue
            free_set.add(unit)
            insort(self._free[office_id], unit)
            added.append(unit)
        return added

    def take(self, office_id: int, units: Iterable[int]) -> list[int]:
        """Mark units as not free (taken by someone); return those that were free."""
        taken: list[int] = []
        free_set = self._free_set[office_id]
        free = self._free[office_id]
        for unit in units:
            if unit in free_set:
                free_set.discard(unit)
                del free[bisect_left(free, unit)]
                taken.append(unit)
        return taken

    def hold(self, office_id: int, units: list[int]) -> bool:
        """Take a run for a process if every unit is free; return success."""
        if not all(u in self._free_set[office_id] for u in units):
            return False
        self.take(office_id, units)
        self._held[office_id].update(units)
        return True

    def unhold(self, office_id: int, units: list[int], *, free: bool) -> None:
        """Give up a process's units; make them free again if ``free``."""
        self._held[office_id].difference_update(units)
        if free:
            self.release(office_id, units)

    def is_free(self, office_id: int, unit: int) -> bool:
        """Return whether one unit is free."""
        return unit in self._free_set[office_id]

    def free_units(self, office_id: int) -> list[int]:
        """Return the free unit starts of an office, sorted."""
        return list(self._free[office_id])

    def bookable_starts(
        self, office_id: int, count: int, lo: float, hi: float
    ) -> list[int]:
        """Return starts ``t`` with ``lo < t < hi`` where ``count`` units are free."""
        free = self._free[office_id]
        free_set = self._free_set[office_id]
        step = self._step[office_id]
        result: list[int] = []
        for i in range(bisect_left(free, int(lo)), len(free)):
            t = free[i]
            if t >= hi:
                break
            if t <= lo:
                continue
            if all(t + j * step in free_set for j in range(1, count)):
                result.append(t)
        return result

    def prune(self, before: float) -> None:
        """Forget free units that started before ``before`` (the past)."""
        for office_id, free in self._free.items():
            cut = bisect_left(free, int(before))
            if cut:
                for unit in free[:cut]:
                    self._free_set[office_id].discard(unit)
                del free[:cut]
