"""Acking a batch by hand, once everything it produced is stored and delivered."""
from __future__ import annotations

from typing import Iterable

import faust


async def ack_all(stream: faust.StreamT, events: Iterable[faust.EventT]) -> None:
    """Ack each event of a ``noack_take`` batch: its offset may now be committed (once every
    agent reading the topic has acked it)."""
    for event in events:
        await stream.ack(event)
