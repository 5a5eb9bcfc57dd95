"""Schema lookup by Confluent schema id: the local files, or a Confluent-compatible registry.

>>> LocalSchemaRegistry().get(1)["name"]
'LLMCall'
"""
from __future__ import annotations

import json
import threading
from typing import Any, Protocol

import httpx

from schemas import load_schema, local_schema_ids


class UnknownSchemaError(LookupError):
    """No schema is registered under that id."""


class RegistryUnavailable(RuntimeError):
    """The registry could not be asked (network, 5xx): retry later, the message is not at fault."""


class SchemaRegistry(Protocol):
    def get(self, schema_id: int) -> dict[str, Any]:  # pragma: no cover - protocol
        ...


class LocalSchemaRegistry:
    """Ids from ``schemas/registry.json``; no server needed."""

    def get(self, schema_id: int) -> dict[str, Any]:
        filename = local_schema_ids().get(schema_id)
        if filename is None:
            raise UnknownSchemaError(
                f"schema id {schema_id} is not in schemas/registry.json (known: {sorted(local_schema_ids())})"
            )
        return load_schema(filename)


class HttpSchemaRegistry:
    """A Confluent Schema Registry over its REST API (``GET /schemas/ids/{id}``), cached.

    Lookups happen once per id; a 404 (error_code 40403) is final, other failures raise
    :class:`RegistryUnavailable` so the caller retries rather than dead-lettering valid data.
    """

    def __init__(self, url: str, timeout_s: float = 5.0, auth: tuple[str, str] | None = None) -> None:
        self.url = url.rstrip("/")
        self._client = httpx.Client(timeout=timeout_s, auth=auth)
        self._cache: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def get(self, schema_id: int) -> dict[str, Any]:
        with self._lock:
            if schema_id in self._cache:
                return self._cache[schema_id]
        try:
            response = self._client.get(
                f"{self.url}/schemas/ids/{schema_id}",
                headers={"Accept": "application/vnd.schemaregistry.v1+json"},
            )
        except httpx.HTTPError as exc:
            raise RegistryUnavailable(f"schema registry {self.url} unreachable: {exc!r}") from exc
        if response.status_code == 404:
            raise UnknownSchemaError(f"schema id {schema_id} not found in registry {self.url}")
        if response.status_code != 200:
            raise RegistryUnavailable(f"schema registry {self.url} answered {response.status_code}: {response.text[:200]}")
        body = response.json()
        if body.get("schemaType", "AVRO") != "AVRO":
            raise UnknownSchemaError(f"schema id {schema_id} is {body['schemaType']}, not AVRO")
        schema = json.loads(body["schema"])
        with self._lock:
            self._cache[schema_id] = schema
        return schema

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        """Register a schema under a subject (``POST /subjects/{subject}/versions``); returns its id."""
        response = self._client.post(
            f"{self.url}/subjects/{subject}/versions",
            json={"schema": json.dumps(schema), "schemaType": "AVRO"},
            headers={"Content-Type": "application/vnd.schemaregistry.v1+json"},
        )
        if response.status_code != 200:
            raise RuntimeError(f"registering {subject} failed ({response.status_code}): {response.text[:200]}")
        return int(response.json()["id"])


def registry_from_url(url: str | None) -> SchemaRegistry:
    """The HTTP registry when a URL is configured, else the local files."""
    return HttpSchemaRegistry(url) if url else LocalSchemaRegistry()
