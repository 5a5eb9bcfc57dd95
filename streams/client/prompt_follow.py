"""Follow the compacted ``llm.prompts`` topic from an app: labels and versions as they are published.

A daemon thread reads the topic from the start (it is compacted: every version and each prompt's
latest labels) and keeps what it saw in memory, so a ``rollback`` that CI publishes reaches every
running app within seconds, without a redeploy. Versions come with their front matter and
template, so an app can render a version its bundled files do not hold. When the topic cannot be
read the follower simply knows nothing, and the client uses its bundled files.
"""
from __future__ import annotations

import asyncio
import json
import logging
import threading
import yaml

from streams.client.prompt_files import PromptError, PromptFile
from streams.client.prompt_registry import Target

log = logging.getLogger(__name__)


class PromptFollower:
    """What the prompts topic says: labels per prompt, and every published version."""

    def __init__(self, bootstrap: str, topic: str = "llm.prompts") -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.labels: dict[str, dict[str, Target]] = {}
        self.versions: dict[tuple[str, str], PromptFile] = {}
        self.seen = 0  # messages applied
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="llmwatch-prompts", daemon=True)

    def start(self) -> "PromptFollower":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def target(self, name: str, label: str) -> Target | None:
        with self._lock:
            return self.labels.get(name, {}).get(label)

    def version(self, name: str, version: str) -> PromptFile | None:
        with self._lock:
            return next((p for (n, v), p in self.versions.items() if n == name and v.startswith(version)), None)

    def apply(self, value: bytes | None) -> None:
        """Take one message (bad ones are logged and skipped: an app never fails on them)."""
        try:
            body = json.loads(value or b"null")
            if body["type"] == "labels":
                with self._lock:
                    self.labels[body["name"]] = dict(body["labels"])
            elif body["type"] == "version":
                source = "---\n" + yaml.safe_dump(body["front_matter"], sort_keys=True) + "---\n" + body["template"]
                prompt = PromptFile.parse(body["name"], source)
                with self._lock:
                    self.versions[(prompt.name, prompt.version)] = prompt
            self.seen += 1
        except (ValueError, KeyError, TypeError, PromptError) as exc:
            log.warning("skipping an unreadable message on %s: %r", self.topic, exc)

    def _run(self) -> None:
        asyncio.run(self._consume())

    async def _consume(self) -> None:
        from aiokafka import AIOKafkaConsumer

        while not self._stop.is_set():
            consumer = AIOKafkaConsumer(self.topic, bootstrap_servers=self.bootstrap, group_id=None,
                                        auto_offset_reset="earliest", enable_auto_commit=False)
            try:
                await consumer.start()
                while not self._stop.is_set():
                    batch = await consumer.getmany(timeout_ms=200)
                    for records in batch.values():
                        for record in records:
                            self.apply(record.value)
            except Exception as exc:  # the broker is away: keep the files as they are, try again
                log.warning("cannot follow %s at %s (%r); using the bundled prompts", self.topic, self.bootstrap, exc)
                await asyncio.sleep(2.0)
            finally:
                await consumer.stop()

