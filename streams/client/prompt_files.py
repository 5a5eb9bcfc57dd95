"""One ``.prompt`` file (Dotprompt format): its metadata, its content-addressed version, rendering.

Parsing and rendering use Dotprompt's own Python implementation (``dotpromptz``): YAML front
matter (``model``, ``config``, ``input.schema`` in Picoschema, ``output``, ``metadata``...) and a
Handlebars body with ``{{role "system"}}`` markers. The version is a short hash of the front
matter as canonical JSON (key order and YAML style do not count) and the template with line
endings normalised, so the same prompt has the same version on every machine and OS.

>>> p = PromptFile.parse("greet", "---\\nmodel: openai/gpt-4o-mini\\ninput:\\n  schema:\\n    name: string\\n---\\n"
...                      "{{role \\"user\\"}}\\nSay hello to {{name}}.\\n")
>>> p.version == PromptFile.parse("greet", "---\\r\\ninput: {schema: {name: string}}\\r\\nmodel: openai/gpt-4o-mini\\r\\n"
...                               "---\\r\\n{{role \\"user\\"}}\\r\\nSay hello to {{name}}.\\r\\n").version
True
>>> p.variables, [(m.role, m.text) for m in p.render({"name": "Ada"})]
(('name',), [('user', 'Say hello to Ada.')])
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Coroutine, Mapping, NamedTuple, TypeVar

import yaml

VERSION_CHARS = 10
#: Helpers and keywords of Dotprompt/Handlebars that are not input variables.
_NOT_VARIABLES = {"role", "history", "media", "section", "json", "else", "this", "if", "unless", "each", "with",
                  "ifEquals", "unlessEquals", "lookup", "log"}
_MUSTACHE = re.compile(r"\{\{\{?\s*([#/^]?)\s*([^}]*?)\s*\}?\}\}")
_PATH = re.compile(r"^@?[A-Za-z_][\w]*(?:\.[\w]+)*$")
T = TypeVar("T")


class PromptError(ValueError):
    """A prompt file or a render is wrong; the message names the prompt (and the line when known)."""


class Message(NamedTuple):
    role: str
    text: str


def normalise(text: str) -> str:
    """Line endings as ``\\n``, no trailing spaces on lines, one final newline."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n") + "\n"


def split(source: str) -> tuple[str, str, int]:
    """(front matter YAML, template, line of the template's first line) of a ``.prompt`` source."""
    text = normalise(source)
    if not text.startswith("---\n"):
        return "", text, 1
    end = text.find("\n---\n", 3)
    if end < 0:
        raise PromptError("front matter opened with '---' on line 1 is never closed with '---'")
    front = text[4:end]
    return front, text[end + 5:], front.count("\n") + 4  # ---, the front matter lines, ---


def variables_of(template: str) -> tuple[str, ...]:
    """Top-level input variables a template reads (``{{name}}``, ``{{#if name}}``, ``{{#each items}}``)."""
    found: list[str] = []
    for _, body in ((m.group(1), m.group(2)) for m in _MUSTACHE.finditer(template)):
        words = [w for w in body.split() if not w.startswith(('"', "'")) and "=" not in w]
        for word in words:
            if word.startswith("@") or word in _NOT_VARIABLES or not _PATH.match(word) or word.isdigit():
                continue
            root = word.split(".")[0]
            if root not in found and root not in _NOT_VARIABLES:
                found.append(root)
    return tuple(found)


def declared_inputs(front: Mapping[str, Any]) -> tuple[str, ...]:
    """Input names the front matter declares (Picoschema ``name`` / ``name?`` / ``name(type)``)."""
    schema = ((front.get("input") or {}).get("schema")) or {}
    if not isinstance(schema, Mapping):
        return ()
    props = schema.get("properties") if schema.get("type") == "object" else schema
    return tuple(re.split(r"[?(]", str(k), maxsplit=1)[0].strip() for k in (props or {}))


def load_yaml(text: str, what: str, first_line: int = 1) -> Any:
    """``yaml.safe_load(text)``; invalid YAML raises :class:`PromptError` naming ``what`` and the line."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + first_line}" if mark is not None else ""
        raise PromptError(f"{what}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, also when the caller is inside an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@dataclass(frozen=True)
class PromptFile:
    """A parsed prompt: ``name``, content ``version``, front matter, template."""

    name: str
    source: str
    front: Mapping[str, Any]
    template: str
    template_line: int
    version: str
    variables: tuple[str, ...] = field(default=())

    @classmethod
    def parse(cls, name: str, source: str) -> "PromptFile":
        """Parse ``source``; a malformed file raises :class:`PromptError` naming the line."""
        front_text, template, line = split(source)
        front = load_yaml(front_text, f"{name}.prompt", first_line=2) if front_text else {}
        front = front or {}
        if not isinstance(front, dict):
            raise PromptError(f"{name}.prompt line 2: front matter must be a mapping, got {type(front).__name__}")
        canonical = json.dumps(front, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
        digest = hashlib.sha256(f"{canonical}\n---\n{template}".encode("utf-8")).hexdigest()[:VERSION_CHARS]
        return cls(name, source, front, template, line, digest, variables_of(template))

    @property
    def model(self) -> str:
        return str(self.front.get("model", ""))

    @property
    def config(self) -> Mapping[str, Any]:
        return self.front.get("config") or {}

    @property
    def output_schema(self) -> Any:
        """The declared output schema (Picoschema or JSON Schema), or None."""
        return (self.front.get("output") or {}).get("schema")

    def render(self, values: Mapping[str, Any]) -> list[Message]:
        """The chat messages for ``values``; a variable the template reads and ``values`` lacks is an error."""
        missing = [v for v in self.variables if v not in values and v not in optional_inputs(self.front)]
        if missing:
            raise PromptError(f"prompt {self.name!r} (version {self.version}) needs variable(s) {', '.join(missing)}; "
                              f"pass them to render()")
        from dotpromptz import Dotprompt
        from dotpromptz.typing import DataArgument

        rendered = _run(Dotprompt().render(self.normalised_source(), DataArgument(input=dict(values))))
        out = []
        for message in rendered.messages:
            text = "".join(getattr(part, "text", "") or "" for part in message.content).strip()
            out.append(Message(str(getattr(message.role, "value", message.role)), text))
        return out

    def normalised_source(self) -> str:
        return normalise(self.source)


def optional_inputs(front: Mapping[str, Any]) -> set[str]:
    """Inputs declared optional in Picoschema (``name?``)."""
    schema = ((front.get("input") or {}).get("schema")) or {}
    if not isinstance(schema, Mapping):
        return set()
    return {re.split(r"[?(]", str(k), maxsplit=1)[0].strip() for k in schema if "?" in str(k)}
