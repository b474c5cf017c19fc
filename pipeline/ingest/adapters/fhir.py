"""FHIR R4 Bulk Data NDJSON (and .json resources or Bundles) -> canonical load units (README "FHIR").

One resource per line, files named by resource type (`Patient.ndjson`, `1.Observation.ndjson`);
a `.json` file holds one resource or a Bundle. Patient -> patients; MedicationAdministration
(ketamine) and Procedure (infusion codes, or codes mapped to a protocol) -> sessions;
Observation (total-score codes, item codes with LA answers, a panel code carrying the score)
and QuestionnaireResponse -> assessments. A row keeps the file and line of the resource it came
from, so rejects point into the files the clinic exported.

Grouping of item Observations (the issue left it open): an item joins the total-score
Observation of its instrument that it is linked to through `hasMember`/`derivedFrom` (in
either direction, also through a panel Observation); failing that, the one total of its
instrument with the same subject and effective time. An item with neither is rejected. A
total Observation `derivedFrom` a QuestionnaireResponse takes that response's answers as its
items, and the response is not loaded a second time (counted in the notes).

Skipped on purpose and counted in the notes: resource types this pipeline does not read,
Observations with codes that are not mapped, panel Observations (grouping only), medication
administrations of other drugs, procedures that are not infusions, questionnaires not mapped.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.errors import InputError
from pipeline.ingest.adapters.common import (
    default_mapping,
    load_mapping,
    protocol_units,
    rows_unit,
)
from pipeline.ingest.adapters.fhir_mapping import PANEL_CODES, Mapping
from pipeline.ingest.adapters.fhir_resources import (
    TABLE_OF,
    Resource,
    Sink,
    Unit,
    code_keys,
    codings,
    effective,
    file_type,
    joined,
    minutes_between,
    primitive,
    read_json,
    read_ndjson,
    ref_id,
    refs,
)
from pipeline.ingest.contract import CONTRACTS
from pipeline.ingest.units import LoadUnit

MAPPING_NAME = "fhir_mapping.toml"
FORMAT = "fhir"

LISTED_CODES = 10  # unmapped Observation codes a note lists


# ---------------------------------------------------------------- resources -> rows


def _common(m: Mapping, body: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    """Canonical columns filled from extensions named in [fhir.extensions]."""
    return {c: v for c in columns if (v := m.ext(body, c)) is not None}


def patient_row(m: Mapping, res: Resource, sink: Sink) -> None:
    body = res.body
    gender = body.get("gender")
    row = _common(m, body, ("birth_date", "sex", "diagnosis_code", "payer", "member_id", "site"))
    row.update(patient_id=res.id, birth_date=body.get("birthDate"))
    if gender is not None:
        row["sex"] = m.sex.get(gender, gender)
    if m.member_id_system:
        row["member_id"] = next((i.get("value") for i in body.get("identifier") or []
                                 if isinstance(i, dict) and i.get("system") == m.member_id_system),
                                row.get("member_id"))
    sink.unit(res.file, "patients").rows.add(res.line, row)


def _protocol(m: Mapping, body: dict[str, Any], keys: list[str]) -> str | None:
    """Extension first, else the first plan reference that the mapping knows, else the
    resource's code in [fhir.protocol_codes], else the reference's id, else default_protocol."""
    from_ext = m.ext(body, "protocol_id")
    if from_ext:
        return from_ext
    candidates = [*refs(body, "request", "basedOn"),
                  *[str(c) for c in body.get("instantiatesCanonical") or []]]
    for candidate in candidates:
        if candidate in m.protocol_refs:
            return m.protocol_refs[candidate]
    by_code = m.lookup(m.protocol_codes, keys)
    if by_code is not None:
        return str(by_code)
    return ref_id(candidates[0]) if candidates else m.default_protocol


def session_row(m: Mapping, res: Resource, sink: Sink) -> None:
    body = res.body
    if res.type == "MedicationAdministration":
        keys = code_keys(body.get("medicationCodeableConcept"))
        if not any(k.split("|")[-1] in m.medication_codes or k in m.protocol_codes for k in keys):
            sink.skip(res, "MedicationAdministration of another medication (not in medication_codes "
                      "or protocol_codes)")
            return
    else:
        keys = code_keys(body.get("code")) + [k for u in body.get("usedCode") or []
                                              for k in code_keys(u)]
        wanted = m.procedure_codes | m.medication_codes
        if not any(k.split("|")[-1] in wanted or k in m.protocol_codes for k in keys):
            sink.skip(res, "Procedure that is not an infusion (code not in procedure_codes or "
                      "protocol_codes)")
            return
    protocol = _protocol(m, body, keys)
    if protocol is None:
        sink.reject(res, "protocol_id", None, (
            f"the {res.type} names no protocol (no plan reference in basedOn / request / "
            "instantiatesCanonical known to [fhir.protocol_refs]); map its code under "
            "[fhir.protocol_codes], or set [fhir] default_protocol = \"<protocol id>\" in the "
            f"mapping (its code: {keys[0] if keys else 'none'})"))
        return
    columns = tuple(c for c in CONTRACTS["sessions"].columns if c not in ("session_id", "patient_id"))
    row = _common(m, body, columns)
    status = body.get("status")
    row.update(
        session_id=res.id,
        patient_id=ref_id(body.get("subject")),
        protocol_id=protocol,
        started_at=effective(body),
        status=m.status.get(status, status) if status is not None else None,
    )
    period = body.get("effectivePeriod") or body.get("performedPeriod")
    if "duration_minutes" not in row and (minutes := minutes_between(period)) is not None:
        row["duration_minutes"] = minutes
    dose = (body.get("dosage") or {}).get("dose") if isinstance(body.get("dosage"), dict) else None
    if isinstance(dose, dict) and dose.get("value") is not None:
        unit = str(dose.get("code") or dose.get("unit") or "").strip().lower()
        if unit in ("mg", "milligram", "milligrams"):
            row["dose_mg"] = dose["value"]
        elif unit in ("mg/kg", "mg/kg{body weight}"):
            row["dose_mg_per_kg"] = dose["value"]
        else:
            sink.reject(res, "dose_mg", dose.get("value"),
                        f"dosage.dose has unit {unit or 'none'!r}; use mg or mg/kg")
            return
    performer = body.get("performer")
    if "provider" not in row and isinstance(performer, list) and performer:
        actor = performer[0].get("actor") if isinstance(performer[0], dict) else None
        row["provider"] = actor.get("display") if isinstance(actor, dict) else None
    if "site" not in row and isinstance(body.get("location"), dict):
        row["site"] = body["location"].get("display")
    if res.type == "Procedure":
        events = [c.get("text") or (codings(c)[0].get("display") if codings(c) else None)
                  for c in body.get("complication") or [] if isinstance(c, dict)]
        row["adverse_events"] = joined([row.get("adverse_events"), *events])
        cpt = [c.get("code") for c in codings(body.get("code")) if "cpt" in str(c.get("system", "")).lower()]
        row["cpt_codes"] = joined([row.get("cpt_codes"), *cpt])
    sink.unit(res.file, "sessions").rows.add(res.line, row)


@dataclass
class Score:
    """A total-score Observation or a QuestionnaireResponse on its way to an assessments row."""

    res: Resource
    instrument: str
    total: Any
    items: dict[int, Any] = field(default_factory=dict)


def _assessment_row(m: Mapping, score: Score, sink: Sink) -> None:
    body = score.res.body
    row = _common(m, body, ("timing", "session_id"))
    row.update(
        assessment_id=score.res.id,
        patient_id=ref_id(body.get("subject")),
        instrument=score.instrument,
        administered_at=effective(body),
        total_score=score.total,
    )
    if "session_id" not in row:
        part_of = refs(body, "partOf")
        row["session_id"] = ref_id(part_of[0]) if part_of else None
    for n, value in score.items.items():
        row[f"item_{n}"] = value
    sink.unit(score.res.file, "assessments").rows.add(score.res.line, row)


def _link_ids(items: Any) -> list[dict[str, Any]]:
    out = []
    for item in items or []:
        if isinstance(item, dict):
            out.append(item)
            out += _link_ids(item.get("item"))
            for answer in item.get("answer") or []:
                if isinstance(answer, dict):
                    out += _link_ids(answer.get("item"))
    return out


def questionnaire_score(m: Mapping, res: Resource, sink: Sink) -> Score | None:
    """Instrument, items and total of a QuestionnaireResponse; None (counted) when not mapped."""
    body = res.body
    answered = {str(i.get("linkId", "")): i for i in _link_ids(body.get("item"))}
    spec = m.questionnaires.get(str(body.get("questionnaire", "")).split("|")[0])
    if spec is None:  # US Core style: linkIds are LOINC codes, `/44250-9`
        found = {m.items[k.lstrip("/")][0] for k in answered if k.lstrip("/") in m.items}
        found |= {m.totals[k.lstrip("/")] for k in answered if k.lstrip("/") in m.totals}
        if len(found) != 1:
            sink.skip(res, "QuestionnaireResponse of a questionnaire not mapped")
            return None
        instrument = found.pop()
        item_links = {k: m.items[k.lstrip("/")][1] for k in answered
                      if m.items.get(k.lstrip("/"), ("", 0))[0] == instrument}
        total_links = [k for k in answered if m.totals.get(k.lstrip("/")) == instrument]
    else:
        instrument = spec["instrument"]
        item_links = {k: n for k, n in spec["items"].items() if k in answered}
        total_links = [spec["total"]] if spec["total"] in answered else []

    def value(link: str) -> Any:
        answers = [a for a in answered[link].get("answer") or [] if isinstance(a, dict)]
        return m.answer(answers[0]) if answers else None

    items = {n: v for link, n in item_links.items() if (v := value(link)) is not None}
    total = value(total_links[0]) if total_links else None
    status = body.get("status")
    if status not in m.questionnaire_statuses:
        sink.reject(res, "status", status, f"QuestionnaireResponse status {status!r}; only "
                    f"{', '.join(sorted(m.questionnaire_statuses))} responses are scores")
        return None
    if total is None:  # no total answered: score complete item sets by the registry's rule
        answers = [items.get(n) for n in range(1, m.registry[instrument].item_count + 1)]
        if all(isinstance(v, int) for v in answers):
            total = m.registry[instrument].item_total(answers)  # type: ignore[arg-type]
    return Score(res, instrument, total, items)


class Groups:
    """Union-find over Observation ids linked by hasMember / derivedFrom."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)


def _final(m: Mapping, res: Resource, sink: Sink) -> bool:
    """Only final (amended, corrected) Observations are scores; others are rejected."""
    status = res.body.get("status")
    if status not in m.observation_statuses:
        sink.reject(res, "status", status, f"Observation status {status!r}; only "
                    f"{', '.join(sorted(m.observation_statuses))} results are scores")
        return False
    return True


def _total(m: Mapping, res: Resource, instrument: str, sink: Sink) -> Score | None:
    """A total-score Observation (or a panel carrying the score) with its component items."""
    if not _final(m, res, sink):
        return None
    score = Score(res, instrument, m.answer(res.body))
    for comp in res.body.get("component") or []:
        if isinstance(comp, dict) and (hit := m.lookup(m.items, code_keys(comp.get("code")))):
            if hit[0] == instrument:
                score.items[hit[1]] = m.answer(comp)
    return score


def score_key(res: Resource, instrument: str) -> tuple[Any, ...]:
    """Patient, time and instrument: what a score without links is matched by."""
    return (ref_id(res.body.get("subject")), instant(effective(res.body)), instrument)


def instant(value: str | None) -> Any:
    """A FHIR date-time as a comparable instant (`Z` and `+00:00` alike); the text if not one."""
    try:
        return datetime.fromisoformat(value) if value else value
    except ValueError:
        return value


def observation_scores(m: Mapping, observations: list[Resource], responses: dict[str, Resource],
                       sink: Sink) -> tuple[list[Score], set[str]]:
    """Total-score Observations with their items; and the ids of responses folded into them.

    A panel Observation (PHQ-9 44249-1, GAD-7 69737-5) that carries a value is the total when no
    separate total Observation of its instrument is linked to it or taken at the same time.
    """
    totals: list[Score] = []
    items: list[tuple[Resource, str, int]] = []
    panels: list[tuple[Resource, str]] = []
    groups = Groups()
    for res in observations:
        body = res.body
        keys = code_keys(body.get("code"))
        instrument = m.lookup(m.totals, keys)
        item = m.lookup(m.items, keys)
        if res.id:
            for target in refs(body, "hasMember", "derivedFrom"):
                if target.startswith("Observation/") or "/Observation/" in target:
                    groups.union(res.id, "Observation/" + (ref_id(target) or ""))
            groups.union(res.id, "Observation/" + res.id)
        if instrument is None and item is None:
            panel = m.lookup(PANEL_CODES, keys)
            if panel in m.registry and primitive(body) is not None:
                panels.append((res, panel))
            elif panel:
                sink.skip(res, "panel Observation (grouping only)")
            else:
                sink.skip(res, "Observation with a code not mapped",
                          keys[1] if len(keys) > 1 else "no code")
            continue
        if instrument is not None:
            if (score := _total(m, res, instrument, sink)) is not None:
                totals.append(score)
        elif _final(m, res, sink):
            items.append((res, *item))
    separate = {score_key(t.res, t.instrument) for t in totals}
    separate |= {(groups.find(t.res.id), t.instrument) for t in totals if t.res.id}
    for res, instrument in panels:
        if score_key(res, instrument) in separate or (res.id and (groups.find(res.id), instrument)
                                                      in separate):
            sink.skip(res, "panel Observation with a value beside its total-score Observation (the "
                      "total is the score)")
        elif (score := _total(m, res, instrument, sink)) is not None:
            totals.append(score)

    by_group: dict[tuple[str, str], list[Score]] = defaultdict(list)
    by_time: dict[tuple[Any, ...], list[Score]] = defaultdict(list)
    for score in totals:
        if score.res.id:
            by_group[(groups.find(score.res.id), score.instrument)].append(score)
        by_time[score_key(score.res, score.instrument)].append(score)
    folded = Counter[str]()
    for res, instrument, n in items:
        linked = by_group.get((groups.find(res.id), instrument), []) if res.id else []
        owners = linked if len(linked) == 1 else by_time.get(score_key(res, instrument), [])
        if len(owners) != 1:
            sink.reject(res, f"item_{n}", None, (
                f"{instrument} item Observation without a total-score Observation "
                f"{'(several match)' if owners else ''} linked by hasMember/derivedFrom or at the "
                "same time for the same patient; export the total score too").replace("  ", " "))
            continue
        owner = owners[0]
        if n in owner.items:
            sink.reject(res, f"item_{n}", None, f"a second {instrument} item {n} for the same "
                        "total-score Observation; keep one")
            continue
        owner.items[n] = m.answer(res.body)
        folded[res.file] += 1
    for file, count in folded.items():
        sink.unit(file, "assessments").joined[
            "item Observations joined to their total-score Observation's row"] += count

    used_responses: set[str] = set()
    for score in totals:
        for target in refs(score.res.body, "derivedFrom"):
            qr_id = ref_id(target)
            if "QuestionnaireResponse" in target and qr_id in responses:
                used_responses.add(qr_id)  # type: ignore[arg-type]
                if not score.items:
                    from_qr = questionnaire_score(m, responses[qr_id], Sink())  # type: ignore[index]
                    if from_qr is not None and from_qr.instrument == score.instrument:
                        score.items = from_qr.items
    return totals, used_responses


# ---------------------------------------------------------------- entry point


def _read_files(data_dir: Path, mapping_path: Path | None, sink: Sink
                ) -> tuple[list[Resource], list[str]]:
    """Resources of every NDJSON file named by a resource type and every .json file (one resource
    or a Bundle); and the files ignored, with what they hold."""
    resources: list[Resource] = []
    ignored: list[str] = []
    files = [p for p in sorted(data_dir.iterdir()) if p.is_file() and not p.name.startswith(".")]
    for path in files:
        suffix = path.suffix.lower()
        kind = file_type(path) if suffix in (".ndjson", ".jsonl") else None
        if kind in TABLE_OF:
            sink.unit(path.name, TABLE_OF[kind])  # a file with no usable row still reports
            resources += read_ndjson(path, TABLE_OF[kind], sink)
        elif kind is not None:
            count = sum(1 for line in path.read_bytes().split(b"\n") if line.strip())
            ignored.append(f"{path.name} ({count} {kind} resources, a type this pipeline does "
                           "not read)")
        elif suffix == ".json":
            found, note = read_json(path, sink)
            resources += found
            ignored += [note] if note else []
        elif mapping_path is None or path.resolve() != mapping_path.resolve():
            if path.stem.lower() != "protocols":
                ignored.append(path.name)
    if not resources and not sink.units:
        raise InputError(f"{data_dir}: no FHIR files found (NDJSON named by resource type: "
                         "Patient.ndjson, Observation.ndjson, QuestionnaireResponse.ndjson, "
                         "MedicationAdministration.ndjson, Procedure.ndjson; or .json files "
                         "holding a resource or a Bundle)")
    return resources, ignored


def _response_scores(m: Mapping, responses: list[Resource], scores: list[Score], used: set[str],
                     sink: Sink) -> None:
    """Responses as scores; one taken at the time of a total without items gives its items."""
    bare = {score_key(s.res, s.instrument): s for s in scores if not s.items}
    for res in responses:
        if res.id is not None and res.id in used:
            sink.unit(res.file, "assessments").joined[
                "QuestionnaireResponses whose answers are the items of the total-score "
                "Observation derived from them"] += 1
        elif (score := questionnaire_score(m, res, sink)) is not None:
            owner = bare.pop(score_key(res, score.instrument), None)
            if owner is not None and score.items:
                owner.items = score.items
                sink.unit(res.file, "assessments").joined[
                    "QuestionnaireResponses whose answers are the items of the total-score "
                    "Observation of the same patient, instrument and time"] += 1
            else:
                scores.append(score)


def _notes(unit: Unit, table: str) -> list[str]:
    notes = []
    for what, n in sorted(unit.skipped.items()):
        codes = unit.codes.get(what)
        if codes:
            listed = [c if k == 1 else f"{c} x{k}" for c, k in sorted(
                codes.items(), key=lambda ck: (-ck[1], ck[0]))]
            more = len(listed) - LISTED_CODES
            what += " (" + ", ".join(listed[:LISTED_CODES]) + (
                f" and {more} more codes" if more > 0 else "") + ")"
        notes.append(f"skipped (not loaded): {n} x {what}")
    notes += [f"{n} {what} (not rows of their own, so not in read)"
              for what, n in sorted(unit.joined.items())]
    if table == "sessions" and not unit.rows and not unit.rejects:
        notes.append("no infusion session in this file (see procedure_codes, medication_codes and "
                     "[fhir.protocol_codes] in README \"FHIR\")")
    return notes


def units(data_dir: Path, config: Config, mapping: Path | None) -> tuple[list[LoadUnit], list[str]]:
    mapping_path = default_mapping(data_dir, mapping, MAPPING_NAME)
    spec = load_mapping(mapping_path, "FHIR")
    m = Mapping(spec, mapping_path, config)
    sink = Sink()
    resources, ignored = _read_files(data_dir, mapping_path, sink)
    observations: list[Resource] = []
    responses: list[Resource] = []
    for res in resources:
        if res.type == "Patient":
            patient_row(m, res, sink)
        elif res.type in ("MedicationAdministration", "Procedure"):
            session_row(m, res, sink)
        elif res.type == "Observation":
            observations.append(res)
        elif res.type == "QuestionnaireResponse":
            responses.append(res)
        else:
            sink.skip(res, f"{res.type} resource (a type this pipeline does not read)")
    by_id = {r.id: r for r in responses if r.id}
    scores, used = observation_scores(m, observations, by_id, sink)
    _response_scores(m, responses, scores, used, sink)
    for score in sorted(scores, key=lambda s: (s.res.file, s.res.line)):
        _assessment_row(m, score, sink)

    result = [rows_unit(file, unit.rows, FORMAT, sink.sha[file], unit.rejects, _notes(unit, table))
              for (file, table), unit in sorted(sink.units.items())]
    protocols, _ = protocol_units(data_dir, spec, mapping_path, FORMAT)
    return protocols + result, ignored
