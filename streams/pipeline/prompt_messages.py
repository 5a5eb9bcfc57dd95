"""The ``llm.prompts`` topic's messages (JSON, compacted by key), free of Faust.

``llmwatch prompts publish`` writes, for each prompt, one ``version`` message per version it can
load (key ``version:<name>:<version>``) and one ``labels`` message (key ``labels:<name>``); the
topic is compacted, so it always holds every version and each prompt's current labels. The
worker stores the versions in ``prompt_versions``; apps following the topic
(:class:`streams.client.prompts.PromptClient` with ``follow=``) take the labels from it.

>>> key, value = labels_message("support", {"production": "3f2a9c1b7e"}, now_ms=0)
>>> key, json.loads(value)["labels"]
(b'labels:support', {'production': '3f2a9c1b7e'})
"""
from __future__ import annotations

import datetime as dt
import json
from typing import Any, Mapping, Sequence

from streams.pipeline.dead_letter import DeadLetter
from streams.pipeline.ingest import RawMessage
from streams.pipeline.verdicts import StoredBatch

PROMPT_VERSION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("name", "LowCardinality(String)"),
    ("version", "String"),
    ("model", "String"),
    ("template", "String"),
    ("config", "String"),
    ("front_matter", "String"),
    ("author", "String"),
    ("commit", "String"),
    ("committed_at", "DateTime64(3, 'UTC')"),
    ("labels", "Array(String)"),
    ("published_at", "DateTime64(3, 'UTC')"),
)
_UTC = dt.timezone.utc


def version_message(name: str, version: str, front: Mapping[str, Any], template: str, *, author: str, commit: str,
                    committed_at_ms: int, labels: Sequence[str], now_ms: int) -> tuple[bytes, bytes]:
    """(key, value) of one version."""
    body = {"type": "version", "name": name, "version": version, "model": str(front.get("model", "")),
            "config": front.get("config") or {}, "front_matter": dict(front), "template": template, "author": author,
            "commit": commit, "committed_at_ms": committed_at_ms, "labels": list(labels), "published_at_ms": now_ms}
    return f"version:{name}:{version}".encode(), json.dumps(body, default=str, sort_keys=True).encode()


def labels_message(name: str, labels: Mapping[str, Any], now_ms: int) -> tuple[bytes, bytes]:
    """(key, value) of a prompt's labels (each a version or a weighted split)."""
    body = {"type": "labels", "name": name, "labels": dict(labels), "published_at_ms": now_ms}
    return f"labels:{name}".encode(), json.dumps(body, sort_keys=True).encode()


def prompt_version_rows(messages: Sequence[RawMessage], topic: str) -> StoredBatch:
    """``prompt_versions`` rows of the version messages; labels messages are skipped; bad ones dead-lettered."""
    out = StoredBatch()
    for msg in messages:
        if msg.value is None:
            continue  # a tombstone: compaction removes the key, nothing to store
        try:
            body = json.loads(msg.value)
            if body.get("type") == "labels":
                continue
            if body.get("type") != "version":
                raise ValueError(f"unknown message type {body.get('type')!r}")
            out.rows.append(_row(body))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            out.dead_letters.append(DeadLetter(msg.value, msg.key, "bad_prompt_message", repr(exc), topic, msg.partition,
                                               msg.offset))
    return out


def _row(body: Mapping[str, Any]) -> list[Any]:
    when = lambda ms: dt.datetime.fromtimestamp(int(ms) / 1000, _UTC)  # noqa: E731
    return [str(body["name"]), str(body["version"]), str(body.get("model", "")), str(body["template"]),
            json.dumps(body.get("config") or {}, sort_keys=True), json.dumps(body.get("front_matter") or {}, sort_keys=True, default=str),
            str(body.get("author", "")), str(body.get("commit", "")), when(body.get("committed_at_ms", 0)),
            [str(label) for label in body.get("labels", [])], when(body["published_at_ms"])]
