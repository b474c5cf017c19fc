"""FHIR resources as plain data: reference and code helpers, and reading NDJSON and JSON files.

A resource keeps the file and line it came from, so rejects point into the files the clinic
exported. `Sink` collects, per (file, table), the rows built, the rejects and what was skipped.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.errors import InputError
from pipeline.ingest.adapters.common import Reject, Rows
from pipeline.ingest.contract import CONTRACTS
from pipeline.ingest.csv_text import _sha256

TABLE_OF = {
    "Patient": "patients",
    "MedicationAdministration": "sessions",
    "Procedure": "sessions",
    "Observation": "assessments",
    "QuestionnaireResponse": "assessments",
}
TYPE_PREFIX = re.compile(r"^(?:\d+[._-])?([A-Z][A-Za-z]+)")

# ---------------------------------------------------------------- small FHIR helpers


def ref_id(reference: Any) -> str | None:
    """`Patient/123`, `http://host/fhir/Patient/123/_history/2`, `urn:uuid:abc` -> the id."""
    if isinstance(reference, dict):
        reference = reference.get("reference")
    if not isinstance(reference, str) or not reference.strip():
        return None
    parts = reference.strip().removeprefix("urn:uuid:").split("/")
    if "_history" in parts:
        parts = parts[: parts.index("_history")]
    return parts[-1] or None


def refs(resource: dict[str, Any], *keys: str) -> list[str]:
    """Reference strings under the given keys (single or list)."""
    out = []
    for key in keys:
        value = resource.get(key)
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and isinstance(item.get("reference"), str):
                out.append(item["reference"])
    return out


def codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def code_keys(concept: Any) -> list[str]:
    """Lookup keys of a CodeableConcept: `system|code` and the bare code, in coding order."""
    keys = []
    for c in codings(concept):
        code = str(c.get("code", "")).strip()
        if code:
            keys += [f"{c.get('system', '')}|{code}", code]
    return keys


def effective(resource: dict[str, Any]) -> str | None:
    for key in ("effectiveDateTime", "effectiveInstant", "performedDateTime", "authored"):
        if isinstance(resource.get(key), str):
            return resource[key]
    for key in ("effectivePeriod", "performedPeriod"):
        period = resource.get(key)
        if isinstance(period, dict) and period.get("start"):
            return str(period["start"])
    return None


def minutes_between(period: Any) -> float | None:
    if not isinstance(period, dict) or "T" not in str(period.get("start", "")) \
            or "T" not in str(period.get("end", "")):
        return None
    try:
        start = datetime.fromisoformat(str(period["start"]))
        end = datetime.fromisoformat(str(period["end"]))
        return round((end - start).total_seconds() / 60, 2)
    except (TypeError, ValueError):
        return None


def primitive(holder: dict[str, Any]) -> Any:
    """The value of a value[x] (extension, answer, Observation) as plain data."""
    for key, value in holder.items():
        if not key.startswith("value"):
            continue
        if key == "valueQuantity" and isinstance(value, dict):
            return value.get("value")
        if key == "valueCoding" and isinstance(value, dict):
            return value.get("code") or value.get("display")
        if key == "valueCodeableConcept":
            first = codings(value)
            return value.get("text") or (first[0].get("display") or first[0].get("code")
                                         if first else None)
        if key == "valueReference":
            return ref_id(value)
        return value
    return None


def extension_values(resource: dict[str, Any], url: str) -> list[Any]:
    return [primitive(e) for e in resource.get("extension") or []
            if isinstance(e, dict) and e.get("url") == url and primitive(e) is not None]


def joined(values: list[Any]) -> str | None:
    values = [str(v) for v in values if v is not None and str(v).strip()]
    return ";".join(values) if values else None


# ---------------------------------------------------------------- reading NDJSON


@dataclass
class Resource:
    file: str
    line: int
    body: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.body.get("resourceType"))

    @property
    def id(self) -> str | None:
        value = self.body.get("id")
        return str(value) if value is not None else None


@dataclass
class Unit:
    """What one (file, table) pair collects before it becomes a LoadUnit."""

    rows: Rows
    rejects: list[Reject] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    joined: Counter[str] = field(default_factory=Counter)  # lines folded into another row
    codes: defaultdict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter))  # skipped kind -> its codes


class Sink:
    def __init__(self) -> None:
        self.units: dict[tuple[str, str], Unit] = {}
        self.sha: dict[str, str] = {}
        self.file_table: dict[str, str] = {}  # the table a file's type prefix names

    def unit(self, file: str, table: str) -> Unit:
        if (file, table) not in self.units:
            self.units[(file, table)] = Unit(Rows(CONTRACTS[table]))
        return self.units[(file, table)]

    def reject(self, res: Resource, column: str | None, value: Any, reason: str) -> None:
        self.unit(res.file, TABLE_OF[res.type]).rejects.append(
            (res.line, column, None if value is None else str(value), reason))

    def skip(self, res: Resource, what: str, code: str | None = None) -> None:
        table = TABLE_OF.get(res.type) or self.file_table.get(res.file, "assessments")
        unit = self.unit(res.file, table)
        unit.skipped[what] += 1
        if code is not None:
            unit.codes[what][code] += 1


def file_type(path: Path) -> str | None:
    match = TYPE_PREFIX.match(path.name)
    return match.group(1) if match else None


def read_ndjson(path: Path, table: str, sink: Sink) -> list[Resource]:
    """Resources of one file; a line that is not a JSON object is a reject at its line."""
    sink.sha[path.name] = _sha256(path)
    sink.file_table[path.name] = table
    resources = []
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name}: not UTF-8 text ({exc}); NDJSON is UTF-8 by definition") from exc
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            body = json.loads(line)
        except json.JSONDecodeError as exc:
            sink.unit(path.name, table).rejects.append(
                (number, None, line[:200], f"not valid JSON ({exc.msg} at column {exc.colno}); "
                 "each line must be one complete FHIR resource"))
            continue
        if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
            sink.unit(path.name, table).rejects.append(
                (number, None, line[:200], "not a FHIR resource: the JSON has no resourceType"))
            continue
        resources.append(Resource(path.name, number, body))
    return resources


def _entry_lines(text: str, count: int) -> list[int]:
    """The line each Bundle entry's resource starts on (1 for all when the layout is unusual)."""
    decoder = json.JSONDecoder()
    found = re.search(r'"entry"\s*:\s*\[', text)
    lines: list[int] = []
    if found:
        at = found.end()
        try:
            while len(lines) < count:
                while text[at] in " \t\r\n,":
                    at += 1
                _, end = decoder.raw_decode(text, at)
                key = re.compile(r'"resource"\s*:').search(text, at, end)
                lines.append(text.count("\n", 0, key.start() if key else at) + 1)
                at = end
        except (ValueError, IndexError):
            lines = []
    return lines if len(lines) == count else [1] * count


def _ndjson_type(text: str) -> str | None:
    """The resource type on the first line, when that line alone is a FHIR resource."""
    first = next((line for line in text.split("\n") if line.strip()), "")
    try:
        body = json.loads(first)
    except json.JSONDecodeError:
        return None
    return body.get("resourceType") if isinstance(body, dict) else None


def read_json(path: Path, sink: Sink) -> tuple[list[Resource], str | None]:
    """Resources of a .json file holding one resource or a Bundle; and, when it holds none this
    pipeline reads, the line for the report's list of ignored files."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
        body = json.loads(text)
    except UnicodeDecodeError as exc:
        raise InputError(f"{path.name}: not UTF-8 text ({exc}); FHIR JSON is UTF-8") from exc
    except json.JSONDecodeError as exc:
        kind = _ndjson_type(text) if exc.msg == "Extra data" else None
        if kind in TABLE_OF:  # NDJSON saved with a .json name: one resource per line
            sink.unit(path.name, TABLE_OF[kind])
            return read_ndjson(path, TABLE_OF[kind], sink), None
        raise InputError(f"{path.name}: not valid JSON ({exc.msg} at line {exc.lineno}); a .json "
                         "file must hold one FHIR resource or a Bundle; export it again") from exc
    if not isinstance(body, dict) or not isinstance(body.get("resourceType"), str):
        return [], f"{path.name} (JSON without a resourceType: not a FHIR resource)"
    if body["resourceType"] == "Bundle":
        entries = [e.get("resource") for e in body.get("entry") or [] if isinstance(e, dict)]
        lines = _entry_lines(text, len(entries))
        found = [Resource(path.name, line, r) for line, r in zip(lines, entries, strict=True)
                 if isinstance(r, dict) and isinstance(r.get("resourceType"), str)]
    else:
        found = [Resource(path.name, 1, body)]
    tables = [TABLE_OF[r.type] for r in found if r.type in TABLE_OF]
    if not tables:
        kinds = Counter(r.type for r in found)
        listed = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) or "no"
        return [], f"{path.name} ({listed} resources, a type this pipeline does not read)"
    sink.sha[path.name] = _sha256(path)
    sink.file_table[path.name] = tables[0]
    for table in dict.fromkeys(tables):
        sink.unit(path.name, table)
    return found, None
