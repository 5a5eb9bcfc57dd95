"""Schema lookup: local files and a Confluent-compatible registry over HTTP (a faithful local fake)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from schemas import load_schema
from streams.pipeline.codec import DecodeError, EventCodec
from streams.pipeline.ingest import IngestProcessor, RawMessage
from streams.pipeline.registry import HttpSchemaRegistry, LocalSchemaRegistry, RegistryUnavailable, UnknownSchemaError

SR_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class FakeSchemaRegistry(BaseHTTPRequestHandler):
    """The two Confluent Schema Registry endpoints llmwatch uses, with the real error shapes."""

    schemas: dict[int, str] = {}
    subjects: dict[str, list[int]] = {}
    requests: list[tuple[str, str, str]] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", SR_CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - http.server naming
        self.requests.append(("GET", self.path, self.headers.get("Accept", "")))
        parts = self.path.strip("/").split("/")
        if len(parts) == 3 and parts[:2] == ["schemas", "ids"] and parts[2].isdigit():
            schema = self.schemas.get(int(parts[2]))
            if schema is None:
                return self._reply(404, {"error_code": 40403, "message": "Schema not found"})
            return self._reply(200, {"schema": schema})
        self._reply(404, {"error_code": 404, "message": "HTTP 404 Not Found"})

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        self.requests.append(("POST", self.path, self.headers.get("Content-Type", "")))
        parts = self.path.strip("/").split("/")
        if len(parts) != 3 or parts[0] != "subjects" or parts[2] != "versions":
            return self._reply(404, {"error_code": 404, "message": "HTTP 404 Not Found"})
        try:
            json.loads(body["schema"])
        except (KeyError, ValueError):
            return self._reply(422, {"error_code": 42201, "message": "Invalid schema"})
        for sid, text in self.schemas.items():  # same schema text -> same id, as the real registry
            if json.loads(text) == json.loads(body["schema"]):
                return self._reply(200, {"id": sid})
        sid = max(self.schemas, default=100) + 1
        self.schemas[sid] = body["schema"]
        self.subjects.setdefault(parts[1], []).append(sid)
        self._reply(200, {"id": sid})


@pytest.fixture
def registry_url():
    FakeSchemaRegistry.schemas = {}
    FakeSchemaRegistry.subjects = {}
    FakeSchemaRegistry.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeSchemaRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_local_registry_knows_shipped_ids_and_names_the_fix_for_unknown():
    assert LocalSchemaRegistry().get(2)["name"] == "LLMCall"
    with pytest.raises(UnknownSchemaError, match="registry.json"):
        LocalSchemaRegistry().get(424242)


def test_http_registry_round_trip_through_codec(registry_url):
    client = HttpSchemaRegistry(registry_url)
    schema_id = client.register("llm.calls-value", load_schema("llm_call.v2.avsc"))
    assert client.register("llm.calls-value", load_schema("llm_call.v2.avsc")) == schema_id  # idempotent
    codec = EventCodec(registry=client)
    event = {"event_id": "r1", "timestamp_ms": 1_700_000_000_000, "service_name": "a", "request_model": "m"}
    record = codec.decode(codec.encode_json(event)).record
    raw = codec.encode_confluent(record, schema_id=schema_id)
    for _ in range(3):
        assert codec.decode(raw).record["event_id"] == "r1"
    gets = [r for r in FakeSchemaRegistry.requests if r[0] == "GET"]
    assert len(gets) == 1  # cached after the first lookup
    assert gets[0][1] == f"/schemas/ids/{schema_id}" and SR_CONTENT_TYPE in gets[0][2]


def test_unknown_id_in_http_registry_is_a_dead_letter_reason(registry_url):
    codec = EventCodec(registry=HttpSchemaRegistry(registry_url))
    with pytest.raises(DecodeError) as err:
        codec.decode(b"\x00\x00\x00\x03\xe7" + b"\x02")
    assert err.value.reason == "unknown_schema_id"


def test_unreachable_registry_is_retryable_not_a_rejection():
    """Valid data must not be dead-lettered because the registry is down."""
    client = HttpSchemaRegistry("http://127.0.0.1:9", timeout_s=0.5)
    with pytest.raises(RegistryUnavailable):
        client.get(1)
    processor = IngestProcessor(EventCodec(registry=client), topic="t")
    with pytest.raises(RegistryUnavailable):  # propagates to the agent, which retries
        processor.process([RawMessage(None, b"\x00\x00\x00\x00\x01\x02", 0, 0)])
