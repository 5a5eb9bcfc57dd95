"""Format: is the answer valid JSON, and does it match the JSON Schema the call declared?

A call declares what it expects through ``Event.attributes`` (:data:`SCHEMA_KEYS` hold a JSON
Schema as a JSON string; :data:`TYPE_KEYS` say ``json`` without a schema). Once the prompt
registry exists, the worker can put the prompt's output schema under the same key. A call that
declares nothing is not checked (the evaluation is skipped).

``jsonschema`` is not a runtime dependency of llmwatch (only of the test extra), so the schema
check is a small validator of the keywords structured-output APIs use: ``type`` (and lists of
types), ``enum``, ``const``, ``properties``, ``required``, ``additionalProperties``, ``items``,
``minItems``/``maxItems``, ``minLength``/``maxLength``, ``pattern``, ``minimum``/``maximum``/
``exclusiveMinimum``/``exclusiveMaximum``, ``anyOf``/``oneOf``/``allOf`` and local ``$ref``
(``#/$defs/...``, ``#/definitions/...``). Other keywords (``format``, ``if``/``then``,
``patternProperties``, ...) are not checked; the explanation names them.

>>> schema = '{"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}'
>>> check_format('{"name": "Ada"}', {"llmwatch.output_schema": schema}).label
'valid'
>>> r = check_format('{"name": 42}', {"llmwatch.output_schema": schema})
>>> r.label, r.explanation
('schema_mismatch', '$.name: expected string, got integer')
>>> check_format('{"name": "Ada",}', {"gen_ai.output.type": "json"}).label
'invalid_json'
>>> check_format("hello", {}) is None
True
"""
from __future__ import annotations

import json
import re
from typing import Any, Iterator, Mapping

from .result import EvalResult, ok

SCHEMA_KEYS = ("llmwatch.output_schema", "gen_ai.output.schema", "output_schema", "response_schema")
TYPE_KEYS = ("gen_ai.output.type", "response_format", "llmwatch.output_type")
JSON_TYPES = frozenset({"json", "json_object", "json_schema", "application/json"})
MAX_ERRORS = 5
CHECKED = frozenset({
    "type", "enum", "const", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
    "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "anyOf",
    "oneOf", "allOf", "$ref", "$defs", "definitions", "$schema", "$id", "title", "description", "default",
    "examples", "strict", "name",
})
_FENCE = re.compile(r"^\s*```(?:json|JSON)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


def declared_format(attributes: Mapping[str, str]) -> tuple[bool, str | None]:
    """(JSON expected?, the schema text or None) from the call's attributes."""
    for key in SCHEMA_KEYS:
        if attributes.get(key):
            return True, str(attributes[key])
    wants_json = any(str(attributes.get(k, "")).strip().lower() in JSON_TYPES for k in TYPE_KEYS)
    return wants_json, None


def parse_json(text: str) -> tuple[Any, str | None]:
    """(value, None) or (None, error); a single ```json fence around the whole answer is accepted.

    >>> parse_json('```json\\n[1, 2]\\n```')
    ([1, 2], None)
    >>> parse_json('{"a": 1')[1]
    "line 1 column 8: Expecting ',' delimiter"
    """
    fenced = _FENCE.match(text)
    body = fenced.group(1) if fenced else text.strip()
    try:
        return json.loads(body), None
    except json.JSONDecodeError as exc:
        return None, f"line {exc.lineno} column {exc.colno}: {exc.msg}"
    except RecursionError:
        return None, "nested too deeply"
    except ValueError as exc:  # e.g. an integer longer than Python's 4300-digit conversion limit
        return None, str(exc)[:120]


def _type_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    return {str: "string", list: "array", dict: "object"}.get(type(value), type(value).__name__)


def _type_ok(value: Any, expected: Any) -> bool:
    names = expected if isinstance(expected, list) else [expected]
    actual = _type_of(value)
    return actual in names or (actual == "integer" and "number" in names)


def _resolve(ref: str, root: Mapping[str, Any]) -> Mapping[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $ref is supported, got {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def schema_errors(value: Any, schema: Any, root: Any = None, path: str = "$", depth: int = 0) -> Iterator[str]:
    """Every mismatch of ``value`` against ``schema`` (the keywords in :data:`CHECKED`), as ``path: why``.

    >>> list(schema_errors([1, "x"], {"type": "array", "items": {"type": "integer"}}))
    ['$[1]: expected integer, got string']
    """
    root = schema if root is None else root
    if depth > 50 or not isinstance(schema, Mapping):
        return
    if "$ref" in schema:
        yield from schema_errors(value, _resolve(schema["$ref"], root), root, path, depth + 1)
    if "type" in schema and not _type_ok(value, schema["type"]):
        yield f"{path}: expected {schema['type'] if isinstance(schema['type'], str) else ' or '.join(schema['type'])}, got {_type_of(value)}"
        return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{path}: {value!r} is not one of {schema['enum']!r}"
    if "const" in schema and value != schema["const"]:
        yield f"{path}: expected {schema['const']!r}"
    yield from _combinators(value, schema, root, path, depth)
    if isinstance(value, dict):
        yield from _object_errors(value, schema, root, path, depth)
    elif isinstance(value, list):
        yield from _array_errors(value, schema, root, path, depth)
    elif isinstance(value, str):
        yield from _string_errors(value, schema, path)
    elif _type_of(value) in ("integer", "number"):
        yield from _number_errors(value, schema, path)


def _combinators(value: Any, schema: Mapping[str, Any], root: Any, path: str, depth: int) -> Iterator[str]:
    for sub in schema.get("allOf", []):
        yield from schema_errors(value, sub, root, path, depth + 1)
    if "anyOf" in schema and not any(not list(schema_errors(value, s, root, path, depth + 1)) for s in schema["anyOf"]):
        yield f"{path}: matches none of anyOf"
    if "oneOf" in schema:
        matches = sum(1 for s in schema["oneOf"] if not list(schema_errors(value, s, root, path, depth + 1)))
        if matches != 1:
            yield f"{path}: matches {matches} of oneOf, expected exactly 1"


def _object_errors(value: dict, schema: Mapping[str, Any], root: Any, path: str, depth: int) -> Iterator[str]:
    props = schema.get("properties", {})
    for key in schema.get("required", []):
        if key not in value:
            yield f"{path}: missing required property {key!r}"
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        where = f"{path}.{key}"
        if key in props:
            yield from schema_errors(item, props[key], root, where, depth + 1)
        elif extra is False:
            yield f"{path}: unexpected property {key!r}"
        elif isinstance(extra, Mapping):
            yield from schema_errors(item, extra, root, where, depth + 1)


def _array_errors(value: list, schema: Mapping[str, Any], root: Any, path: str, depth: int) -> Iterator[str]:
    if "minItems" in schema and len(value) < schema["minItems"]:
        yield f"{path}: {len(value)} items, fewer than minItems {schema['minItems']}"
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        yield f"{path}: {len(value)} items, more than maxItems {schema['maxItems']}"
    if isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            yield from schema_errors(item, schema["items"], root, f"{path}[{i}]", depth + 1)


def _string_errors(value: str, schema: Mapping[str, Any], path: str) -> Iterator[str]:
    if "minLength" in schema and len(value) < schema["minLength"]:
        yield f"{path}: shorter than minLength {schema['minLength']}"
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        yield f"{path}: longer than maxLength {schema['maxLength']}"
    if "pattern" in schema and not re.search(schema["pattern"], value):
        yield f"{path}: does not match pattern {schema['pattern']!r}"


def _number_errors(value: float, schema: Mapping[str, Any], path: str) -> Iterator[str]:
    checks = (("minimum", lambda b: value < b), ("maximum", lambda b: value > b),
              ("exclusiveMinimum", lambda b: value <= b), ("exclusiveMaximum", lambda b: value >= b))
    for key, fails in checks:
        bound = schema.get(key)
        if isinstance(bound, (int, float)) and not isinstance(bound, bool) and fails(bound):
            yield f"{path}: {value} violates {key} {bound}"


def unchecked_keywords(schema: Any) -> set[str]:
    """Keywords anywhere in ``schema`` that :func:`schema_errors` does not check.

    >>> sorted(unchecked_keywords({"type": "string", "format": "email"}))
    ['format']
    """
    found: set[str] = set()
    if isinstance(schema, Mapping):
        for key, sub in schema.items():
            if key not in CHECKED:
                found.add(key)
            if key in ("properties", "$defs", "definitions") and isinstance(sub, Mapping):
                for item in sub.values():
                    found |= unchecked_keywords(item)
            elif key in ("items", "additionalProperties"):
                found |= unchecked_keywords(sub)
            elif key in ("anyOf", "oneOf", "allOf") and isinstance(sub, list):
                for item in sub:
                    found |= unchecked_keywords(item)
    return found


def check_format(text: str, attributes: Mapping[str, str]) -> EvalResult | None:
    """The format evaluation, or None when the call declares no expected format."""
    wants_json, schema_text = declared_format(attributes)
    if not wants_json:
        return None
    value, error = parse_json(text)
    if error is not None:
        return EvalResult("format", 0.0, "invalid_json", error, True, 1.0)
    if schema_text is None:
        return ok("format", "valid", "valid JSON (no schema declared)", 1.0)
    schema, schema_error = parse_json(schema_text)
    if schema_error is not None or not isinstance(schema, Mapping):
        return ok("format", "bad_schema", f"the declared schema is not a JSON object ({schema_error or 'wrong type'}); valid JSON", 1.0)
    try:
        errors = [e for _, e in zip(range(MAX_ERRORS), schema_errors(value, schema))]
    except (ValueError, KeyError, TypeError, re.error) as exc:
        return ok("format", "bad_schema", f"the declared schema cannot be applied ({exc}); valid JSON", 1.0)
    skipped = sorted(unchecked_keywords(schema))
    note = f" (not checked: {', '.join(skipped)})" if skipped else ""
    if errors:
        return EvalResult("format", 0.0, "schema_mismatch", "; ".join(errors) + note, True, 0.8)
    return ok("format", "valid", "valid JSON matching the declared schema" + note, 1.0)
