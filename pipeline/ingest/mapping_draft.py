"""`outcomes mapping draft DATA_DIR`: a starting mapping.toml from an export's files.

Each file is matched to the canonical table whose columns its header names most closely
(canonical names and common EHR names, matched loosely; a file name such as "Appointments"
helps). Date formats are guessed from the values and marked for review; a date column and a
time column of the same table are joined. Coded columns (status, service/protocol, timing,
instrument) list their distinct values for the user to fill in. README "Loading your EHR's
export" describes the format this writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import Config
from pipeline.errors import InputError
from pipeline.ingest.contract import CONTRACTS, FORMATS, TABLES
from pipeline.ingest.draft_read import Column, ExportFile, key, read_export_file
from pipeline.ingest.mapping_file import CHOICES, DATE_COLUMNS, MAPPING_NAME
from pipeline.instruments import alias_table, normalize_key

SYNONYMS: dict[str, tuple[str, ...]] = {
    "patient_id": ("patient id", "patient mrn", "mrn", "medical record number", "patient number",
                   "chart number", "patient", "client id", "person id"),
    "session_id": ("appointment id", "appt id", "session id", "visit id", "encounter id",
                   "infusion id", "appointment number", "encounter number"),
    "started_at": ("date of service", "dos", "service date", "appointment date", "appt date",
                   "start time", "appointment time", "visit date", "date", "start"),
    "protocol_id": ("service", "protocol", "visit type", "appointment type", "appt type",
                    "service name", "treatment"),
    "status": ("appointment status", "appt status", "status", "visit status"),
    "course_id": ("course", "course id", "treatment course"),
    "dose_mg_per_kg": ("dose mg kg", "dose mg per kg", "mg kg", "dose per kg"),
    "weight_kg": ("weight", "weight kg", "body weight"),
    "dose_mg": ("dose mg", "total dose", "ketamine dose", "ketamine dose mg", "total mg", "dose"),
    "duration_minutes": ("duration", "duration min", "infusion minutes", "minutes",
                         "infusion duration"),
    "site": ("location", "clinic", "facility", "home clinic"),
    "provider": ("clinician", "rendering provider", "physician", "attending"),
    "bp_systolic_max": ("max systolic", "systolic", "sbp", "max bp systolic", "bp systolic"),
    "bp_diastolic_max": ("max diastolic", "diastolic", "dbp", "max bp diastolic", "bp diastolic"),
    "adverse_events": ("side effects", "adverse event", "complications"),
    "cpt_codes": ("cpt", "cpt code", "billing codes"),
    "birth_date": ("dob", "date of birth", "birthdate"),
    "sex": ("gender", "sex at birth"),
    "diagnosis_code": ("diagnosis", "dx", "icd10", "icd 10", "primary dx", "primary diagnosis",
                       "dx code"),
    "payer": ("insurance", "primary insurance", "insurance name", "carrier"),
    "member_id": ("subscriber id", "policy number", "insurance id", "member number"),
    "instrument": ("measure", "questionnaire", "scale", "assessment", "measure name"),
    "administered_at": ("visit date", "assessment date", "date completed", "completed",
                        "completed at", "date"),
    "total_score": ("score", "total", "result"),
    "medication": ("drug", "antidepressant", "medication name", "drug name"),
    "drug_class": ("class", "medication class"),
    "start_date": ("started", "date started", "start"),
    "end_date": ("stopped", "date stopped", "stop date", "end"),
    "adequate_dose": ("adequate", "dose adequate", "therapeutic dose"),
    "improvement_pct": ("improvement", "improvement percent", "percent improvement"),
}
FILE_HINTS = {
    "sessions": ("appointment", "appt", "visit", "encounter", "infusion", "session", "schedule"),
    "patients": ("patient", "demographic", "roster"),
    "assessments": ("measure", "score", "assessment", "outcome", "phq", "questionnaire"),
    "treatment_history": ("medication", "trial", "history", "rx"),
    "protocols": ("protocol", "service"),
}
# coded columns whose values the draft lists: (table, column) -> accepted canonical values
CODED = {**CHOICES, ("sessions", "protocol_id"): (), ("assessments", "instrument"): ()}


@dataclass
class Guess:
    file: ExportFile
    table: str
    columns: dict[str, list[Column]] = field(default_factory=dict)  # canonical -> export column(s)
    scores: dict[str, Column] = field(default_factory=dict)  # wide: instrument -> column
    score: float = 0


def _similarity(column: str, header: str) -> float:
    h = key(header)
    names = (column.replace("_", " "), *SYNONYMS.get(column, ()))
    if h == names[0]:
        return 100
    for rank, name in enumerate(names):
        if h == name:
            return 90 - rank
    words = set(h.split())
    for rank, name in enumerate(names):
        if len(name) > 2 and set(name.split()) <= words:
            return 50 - rank
    return 0


def _assign(table: str, file: ExportFile) -> dict[str, list[Column]]:
    """Canonical column -> export column, best matches first, each used once."""
    pairs = sorted(((_similarity(c, col.name), i, c, col) for c in CONTRACTS[table].columns
                    for i, col in enumerate(file.columns)), key=lambda p: (-p[0], p[1]))
    out: dict[str, list[Column]] = {}
    used: set[str] = set()
    for score, _, canonical, col in pairs:
        if score and canonical not in out and col.name not in used:
            out[canonical] = [col]
            used.add(col.name)
    order = CONTRACTS[table].columns
    out = dict(sorted(out.items(), key=lambda item: order.index(item[0])))
    for canonical in ("started_at", "administered_at"):  # "Date of Service" + "Start Time"
        if canonical in out and out[canonical][0].kind == "date":
            time = next((c for c in file.columns if c.kind == "time" and c.name not in used), None)
            if time is not None:
                out[canonical].append(time)
                used.add(time.name)
    return out


def _wide_scores(file: ExportFile, aliases: dict[str, str]) -> dict[str, Column]:
    scores: dict[str, Column] = {}
    for col in file.columns:
        k = normalize_key(col.name)
        hit = next((name for alias, name in sorted(aliases.items(), key=lambda a: -len(a[0]))
                    if len(alias) >= 4 and k.startswith(alias)), None)
        if hit and hit not in scores and (col.numeric or not col.filled):
            scores[hit] = col
    return scores


def _guess(file: ExportFile, aliases: dict[str, str]) -> Guess | None:
    guesses = []
    stem = file.path.stem.lower()
    for contract in TABLES:
        columns = _assign(contract.name, file)
        found = sum(2 if c in contract.required else 1 for c in columns)
        hint = 3 if any(h in stem for h in FILE_HINTS[contract.name]) or stem == contract.name else 0
        guesses.append(Guess(file, contract.name, columns, score=found + hint))
    scores = _wide_scores(file, aliases)
    if scores:
        columns = {c: cols for c, cols in _assign("assessments", file).items()
                   if c in ("patient_id", "administered_at", "session_id", "timing")
                   and not any(col in scores.values() for col in cols)}
        guesses.append(Guess(file, "assessments", columns, scores, score=4 * len(scores) + 4))
    best = max(guesses, key=lambda g: g.score)
    return best if best.score >= 4 else None


# ---------------------------------------------------------------- writing the TOML


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _source(cols: list[Column]) -> str:
    return _q(cols[0].name) if len(cols) == 1 else "[" + ", ".join(_q(c.name) for c in cols) + "]"


def _format_line(canonical: str, cols: list[Column]) -> list[str]:
    if any(not c.formats for c in cols):
        names = " + ".join(c.name for c in cols)
        return [f'# {canonical} = "..."   # REVIEW: no date format fits every value of {names}; '
                "write one (strptime, e.g. \"%m/%d/%Y\")"]
    if len(cols) == 1 and cols[0].formats[0].startswith("%Y-%m-%d"):
        return [f"# {canonical}: ISO dates ({cols[0].name}), read without a format"]
    if len(cols) == 1:
        formats = cols[0].formats
    else:  # date + time joined with a space; the date alone where the time is empty
        joined = f"{cols[0].formats[-1]} {cols[1].formats[0]}"
        formats = (joined, cols[0].formats[-1]) if cols[1].filled < cols[0].filled else (joined,)
    value = _q(formats[0]) if len(formats) == 1 else "[" + ", ".join(map(_q, formats)) + "]"
    note = f"REVIEW: guessed from {cols[0].checked:,} values"
    if cols[0].misfits:
        note += f"; {cols[0].misfits:,} do not fit it and will be rejected at their lines"
    if cols[0].ambiguous:
        note += (f"; every value also reads as {cols[0].ambiguous} (day and month swapped): "
                 "which does your EHR write?")
    return [f"{canonical} = {value}   # {note}"]


@dataclass(frozen=True)
class Known:
    """Canonical values the export's coded values may already be."""

    protocols: frozenset[str]  # protocol ids of a protocols file in the folder
    instruments: tuple[str, ...]
    aliases: dict[str, str]  # normalize_key(alias) -> instrument


def _values_block(guess: Guess, canonical: str, col: Column, known: Known) -> list[str]:
    accepted = CODED[(guess.table, canonical)]
    if canonical == "instrument":
        choices = ", ".join(known.instruments)
    elif canonical == "protocol_id":
        choices = ", ".join(sorted(known.protocols)) or "your protocol ids"
    else:
        choices = ", ".join(accepted)

    def canonical_of(value: str) -> str | None:
        if canonical == "instrument":
            return known.aliases.get(normalize_key(value))
        if canonical == "protocol_id":
            return value if value in known.protocols else None
        return value.strip().lower() if value.strip().lower() in accepted else None

    if not col.values and col.distinct:
        return [f"# [{guess.table}.values.{canonical}]: {col.distinct} distinct values in "
                f"{col.name!r}, too many to list; map them by hand"]
    filled = {v: canonical_of(v) for v in col.values}
    if all(filled.values()):
        return []
    lines = ["", f"[{guess.table}.values.{canonical}]   # fill in every \"\": {choices}"]
    lines += [f"{_q(v)} = {_q(c or '')}" for v, c in filled.items()]
    return lines


def _table_block(guess: Guess, known: Known) -> list[str]:
    table, cols = guess.table, guess.columns
    lines = [""]
    if guess.scores:
        lines.append("[assessments.wide]   # one row per visit, one column per instrument")
        lines += [f"{c} = {_source(v)}" for c, v in cols.items()]
        lines += [f'# {c} = "<export column>"   # REQUIRED: no column matched'
                  for c in ("patient_id", "administered_at") if c not in cols]
        lines.append("scores = { " + ", ".join(f"{_q(n)} = {_q(c.name)}"
                                               for n, c in guess.scores.items()) + " }")
    else:
        lines.append(f"[{table}.columns]")
        lines += [f"{c} = {_source(v)}" for c, v in cols.items()]
        lines += [f'# {c} = "<export column>"   # REQUIRED: no column of {guess.file.path.name} '
                  "matched" for c in CONTRACTS[table].required if c not in cols]
    used = {c.name for v in cols.values() for c in v} | {c.name for c in guess.scores.values()}
    unused = [c.name for c in guess.file.columns if c.name not in used and c.name]
    if unused:
        lines.append("# not mapped: " + ", ".join(_q(n) for n in unused))
    dated = [c for c in DATE_COLUMNS[table] if c in cols]
    if dated:
        lines += ["", f"[{table}.formats]"]
        for c in dated:
            lines += _format_line(c, cols[c])
    for (t, canonical) in CODED:
        if t == table and canonical in cols and len(cols[canonical]) == 1:
            lines += _values_block(guess, canonical, cols[canonical][0], known)
    return lines


def draft_mapping(data_dir: Path, config: Config) -> str:
    """The text of a starting mapping.toml for the export in data_dir."""
    paths = [p for p in sorted(data_dir.iterdir()) if p.is_file() and not p.name.startswith(".")
             and p.suffix.lower() in FORMATS and p.name != MAPPING_NAME]
    if not paths:
        raise InputError(f"{data_dir}: no .csv, .xlsx or .parquet files to draft a mapping from")
    aliases = alias_table(config.instruments)
    guesses: list[Guess] = []
    unmatched: list[str] = []
    for path in paths:
        guess = _guess(read_export_file(path), aliases)
        if guess is None:
            unmatched.append(path.name)
        else:
            guesses.append(guess)
    files = _file_patterns(data_dir, guesses)
    protocols = frozenset(v for g in guesses if g.table == "protocols" and "protocol_id" in g.columns
                          for v in g.columns["protocol_id"][0].values)
    known = Known(protocols, tuple(config.instruments), aliases)
    lines = [f"# Draft mapping for {data_dir.name}, written by `outcomes mapping draft`.",
             "# Check every REVIEW line, fill in every \"\" value, save as mapping.toml in the",
             "# export folder, then: outcomes ingest <folder> --db clinic.duckdb",
             "# Format: README \"Loading your EHR's export\".", "", "[files]"]
    lines += [f"{table} = {_q(pattern)}" for table, (pattern, _) in files.items()]
    lines += [f"# not matched to a table: {name}" for name in unmatched]
    for _, guess in files.values():
        if guess.scores or (guess.columns and not _canonical_file(guess)):
            lines += _table_block(guess, known)
    return "\n".join(lines) + "\n"


def _file_patterns(data_dir: Path, guesses: list[Guess]) -> dict[str, tuple[str, Guess]]:
    """Table -> (file name or pattern, the guess it is written from). Files of one table with
    the same header (monthly exports) become one pattern."""
    out: dict[str, tuple[str, Guess]] = {}
    for contract in TABLES:
        group = [g for g in guesses if g.table == contract.name]
        if not group:
            continue
        names = [g.file.path.name for g in group]
        if len(group) > 1:
            headers = {tuple(c.name for c in g.file.columns) for g in group}
            if len(headers) > 1:
                raise InputError(f"{data_dir}: {', '.join(names)} all look like {contract.name} "
                                 "files but have different columns; draft them one at a time")
            prefix = os.path.commonprefix(names)
            suffix = os.path.commonprefix([n[len(prefix):][::-1] for n in names])[::-1]
            out[contract.name] = (f"{prefix}*{suffix}", group[0])
        else:
            out[contract.name] = (names[0], group[0])
    return out


def _canonical_file(guess: Guess) -> bool:
    """A file already in canonical columns needs no section (its values are still checked)."""
    return all(len(v) == 1 and key(v[0].name) == c.replace("_", " ")
               for c, v in guess.columns.items()) and not any(
        c in guess.columns and guess.columns[c][0].formats
        and not guess.columns[c][0].formats[0].startswith("%Y-%m-%d")
        for c in DATE_COLUMNS[guess.table])
