"""``mta watch`` as a host of the engine: it keeps running and does not spam."""

from __future__ import annotations

import asyncio
import contextlib
import io

from mta_client.cli.output import Output
from mta_client.cli.watching import WatchRun, run_watches
from mta_client.store import MemoryStore

from .env import TUESDAY, environment, virtual, watch


@virtual
async def test_the_watch_keeps_running_and_prints_each_distinct_error_once() -> None:
    async with environment() as env:
        stdout, stderr = io.StringIO(), io.StringIO()
        out = Output(stdout=stdout, stderr=stderr)
        run = WatchRun(watches=(watch(),), store=MemoryStore())
        task = asyncio.create_task(run_watches(env.client, out, run, names={}))
        await asyncio.sleep(30)
        env.sim.faults.add(kind="html_block", route="available-calendar/", times=4)
        await asyncio.sleep(4 * 900)
        env.sim.release_slot(10489, env.at(TUESDAY, 9), minutes=15)
        # Outside the release windows looks are minutes apart.
        await asyncio.sleep(900)
        env.sim.faults.add(kind="html_block", route="available-calendar/", times=1)
        await asyncio.sleep(900)
        assert not task.done()  # a block does not end the watch
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

        assert env.sim.stats.faults["html_block"] == 5
        failures = [
            line for line in stderr.getvalue().splitlines() if "look failed" in line
        ]
        # Four blocks in a row are one line; after a look worked, the next
        # block is worth a line again.
        assert len(failures) == 2
        assert failures[0] == (
            "mta: look failed: blocked by the city's server (this IP address): "
            "blocked by the city's gateway (answer was text/html) (HTTP 403); "
            "next try in 900 s"
        )
        assert stdout.getvalue().startswith("new   Tue 2026-11-24 09:00")
