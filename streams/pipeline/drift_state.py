"""Drift state that moves between workers with the partitions, losing and repeating nothing.

Drift windows are keyed by (app, model, prompt version). The calls topic is keyed by the app
(``service_name``: the llmwatch client does this), so all of an app's events are in one
partition and one worker sees them all. The state of an app's keys is checkpointed after every
batch under the app's name, in a changelog-backed table whose partition for that name is, by
the same murmur2 hash, the partition the app's events are in: the worker that is assigned the
partition recovers exactly the checkpoints it needs.

Each checkpoint records the offset of the last event it includes. A worker that takes over
skips events at or below it (they are in the state already, though their offsets may not have
been committed), so a SIGKILL between checkpoint and commit counts no event twice. It also
carries what the last drift report said, so an alarm already reported is not reported again.

>>> app_partition("support-bot", 4) == app_partition("support-bot", 4)
True
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from aiokafka.partitioner import murmur2

from streams.pipeline.drift_reports import DriftReporter

Key = tuple[str, str, str]
CHECKPOINT_FORMAT = 2


def app_partition(app: str, partitions: int) -> int:
    """The partition the default Kafka partitioner (Java's and aiokafka's) gives key ``app``."""
    return (murmur2(app.encode()) & 0x7FFFFFFF) % partitions


@dataclass
class DriftOwnership:
    """What one worker's drift detector holds: the apps of its partitions, and for each app the
    offset of the last event already folded into the state."""

    partitions: frozenset[int] = frozenset()
    covered: dict[str, int] = field(default_factory=dict)

    def fresh(self, app: str, offset: int) -> bool:
        """Whether an event still has to be fed (it is not in the restored state yet)."""
        return offset > self.covered.get(app, -1)


def checkpoint_blob(detector: Any, reporter: DriftReporter, app: str, offset: int) -> str:
    """One app's keys, what was last reported for them, and the offset they include."""
    keys = [k for k in detector.keys() if k[0] == app]
    body = {
        "format": CHECKPOINT_FORMAT,
        "offset": offset,
        "keys": [detector.state_dict(k) for k in keys],
        "reported": [[list(k), reporter.seen(k)] for k in keys if reporter.seen(k) is not None],
    }
    # Text, not compressed bytes: Faust's changelog recovery decodes record values as UTF-8
    # (binary values failed there and stalled recovery); the embeddings are base64 already.
    return json.dumps(body, separators=(",", ":"))


def restore(detector: Any, reporter: DriftReporter, blob: str | bytes) -> int:
    """Load one checkpoint into ``detector`` and ``reporter``; the offset it includes."""
    body = json.loads(blob)
    if body.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"drift checkpoint format {body.get('format')!r}, expected {CHECKPOINT_FORMAT}")
    for state in body["keys"]:
        detector.load_state_dict(state)
    for key, counts in body["reported"]:
        reporter.remember(tuple(key), counts)
    return int(body["offset"])


def rebuild(
    detector: Any, reporter: DriftReporter, checkpoints: Iterable[tuple[str, str]], partitions: frozenset[int], total: int
) -> tuple[DriftOwnership, list[str]]:
    """Restore the checkpoints of the apps in ``partitions`` into an empty detector and reporter;
    the ownership, and the apps whose checkpoints could not be read (they start fresh)."""
    ownership = DriftOwnership(partitions)
    broken = []
    for app, blob in checkpoints:
        if not blob or app_partition(app, total) not in partitions:
            continue
        try:
            ownership.covered[app] = restore(detector, reporter, blob)
        except Exception:  # another detector version or config: that app starts fresh
            for key in [k for k in detector.keys() if k[0] == app]:
                detector.reset(key)
            broken.append(app)
    return ownership, broken
