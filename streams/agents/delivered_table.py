"""A Faust table whose writes can be awaited until the changelog holds them.

Faust sends a table write to its changelog from a buffer drained in the background, and its
pre-commit flush gives up after 100 ms without progress, so a consumer offset can be committed
before the changelog record it depends on exists. A worker that takes the partition over then
recovers an older value while starting from the newer offset: the events in between are lost to
the state. Awaiting :meth:`DeliveredTable.delivered` before acking the batch closes that gap.
"""
from __future__ import annotations

import asyncio
from typing import Any

import faust


class DeliveredTable(faust.Table):
    """``faust.Table`` that keeps the changelog sends of its writes until they are awaited."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._unsent: list[asyncio.Future] = []

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        fut = super().send_changelog(*args, **kwargs)
        self._unsent.append(fut)
        return fut

    async def delivered(self) -> None:
        """Return once every write so far is in the changelog (raises if a send failed)."""
        pending, self._unsent = self._unsent, []
        if pending:
            await asyncio.gather(*pending)


def delivered_table(app: faust.App, name: str, **kwargs: Any) -> DeliveredTable:
    """Define a :class:`DeliveredTable` on ``app`` (as ``app.Table`` would)."""
    table = DeliveredTable(app, name=name, beacon=app.tables.beacon, **kwargs)
    return app.tables.add(table)
