"""Produce a batch's messages until the broker acknowledges every one.

An agent acks its batch only after this returns, so a broker that refuses for a while (a
leader election, a full disk) delays the commit and loses nothing; a crash here would make Faust
restart the agent with the batch neither stored downstream nor committed.

>>> import asyncio
>>> tries = []
>>> async def send(item):
...     tries.append(item)
...     fut = asyncio.get_running_loop().create_future()
...     fut.set_exception(OSError("broker away")) if len(tries) < 3 else fut.set_result(item)
...     return fut
>>> asyncio.run(send_all(send, ["a"], backoff_s=0))
>>> tries
['a', 'a', 'a']
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Iterable, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
#: Starts a produce and returns its delivery future (Faust's ``topic.send``, aiokafka's ``send``).
Send = Callable[[T], Awaitable[Awaitable[Any]]]


async def send_all(
    send: Send,
    items: Iterable[T],
    *,
    refit: Callable[[T, BaseException], T] | None = None,
    backoff_s: float = 0.2,
    max_backoff_s: float = 10.0,
    what: str = "message",
) -> None:
    """Send every item; the failed ones again with exponential backoff until all are acknowledged.

    ``refit(item, error)`` may replace an item before its next try (a dead letter the broker
    finds too large is cut). Cancellation propagates.
    """
    pending = list(items)
    delay = backoff_s
    while pending:
        outcomes = await _send_in_order(send, pending)
        failed = [(item, exc) for item, exc in zip(pending, outcomes) if isinstance(exc, BaseException)]
        if not failed:
            return
        for _, exc in failed:
            if isinstance(exc, asyncio.CancelledError):
                raise exc
        log.warning("%d %s(s) not delivered, retrying in %.1fs: %r", len(failed), what, delay, failed[0][1])
        pending = [refit(item, exc) if refit is not None else item for item, exc in failed]
        await asyncio.sleep(delay)
        delay = min(delay * 2, max_backoff_s)


async def _send_in_order(send: Send, items: list[T]) -> list[Any]:
    """Enqueue every item in order (the producer's buffer applies back-pressure), then wait for all
    deliveries; each outcome is a result or the exception it raised.

    One task per message (``gather`` over coroutines) cost more than the produce itself: bridging
    20,000 spans ran at ~500 calls/s with it on 2 cores.
    """
    outcomes: list[Any] = []
    for item in items:
        try:
            outcomes.append(await send(item))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # refused before it was queued (too large, no metadata...)
            outcomes.append(exc)
    waiting = [i for i, o in enumerate(outcomes) if not isinstance(o, BaseException)]
    delivered = await asyncio.gather(*(outcomes[i] for i in waiting), return_exceptions=True)
    for i, result in zip(waiting, delivered):
        outcomes[i] = result
    return outcomes
