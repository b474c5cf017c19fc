"""REDCap flat CSV export (raw values) + data dictionary -> canonical load units (README "REDCap").

The mapping TOML says which form holds patients, which holds infusion sessions and which
forms hold scale scores (one instrument per form), and which field fills which canonical
column. Per form, the rows of that form are found (its repeating-instrument rows, or
non-repeating rows with data in its fields), their `<form>_complete` status is checked, raw
choice codes are decoded (the mapping's codes, else the dictionary's labels), checkbox
columns `field___code` are joined with `;`, and each row keeps its line in the export.

Ids are deterministic: `record:event:form:instance` (event only in longitudinal projects,
instance 1 for non-repeating rows), unless the mapping names an id field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from pipeline.config import Config
from pipeline.errors import InputError
from pipeline.ingest.adapters.common import (
    Reject,
    arrow_unit,
    check_keys,
    default_mapping,
    load_mapping,
    protocol_units,
)
from pipeline.ingest.adapters.redcap_files import (
    Export,
    Field,
    find_files,
    read_dictionary,
    read_export,
)
from pipeline.ingest.contract import CONTRACTS
from pipeline.ingest.units import LoadUnit
from pipeline.instruments import normalize_key

MAPPING_NAME = "redcap_mapping.toml"
FORMAT = "redcap"
COMPLETE_LABELS = {"0": "Incomplete", "1": "Unverified", "2": "Complete"}
# Keys of a table section that are not canonical columns.
SECTION_KEYS = {"form", "codes", "keep_codes", "complete"}
ASSESSMENT_KEYS = SECTION_KEYS | {"instrument", "items", "session_instance"}
LINK_COLUMNS = {"assessments": ("session_id",)}


# ---------------------------------------------------------------- one form -> one unit


@dataclass
class FormPlan:
    table: str
    form: str
    section: dict[str, Any]
    where: str  # "[sessions]" or "[[assessments]] (phq9)", for messages


class Project:
    """The export, its dictionary and the project-wide mapping settings."""

    def __init__(self, export: Export, fields: dict[str, Field], settings: dict[str, Any],
                 mapping_path: Path) -> None:
        self.export = export
        self.fields = fields
        self.mapping_path = mapping_path
        # in the export's order (a dict): the labels of ticked checkboxes are joined in that
        # order, not in a set's, which changes with each process's string hashing
        self.columns = dict.fromkeys(export.frame.columns)
        self.record = next(iter(fields))  # REDCap's first field is the record id
        if self.record not in self.columns:
            raise InputError(f"{export.path.name}: the record id column {self.record!r} (the "
                             "dictionary's first field) is not in the export")
        self.complete = {str(c) for c in settings.get("complete", [2])}
        self.patient_field = str(settings.get("patient_id", self.record)).lower()
        self.longitudinal = "redcap_event_name" in self.columns
        self.sessions_form: str | None = None
        self.checkboxes = {c for c in self.columns if "___" in c
                           and getattr(fields.get(c.split("___")[0]), "type", "") == "checkbox"}
        # The patient id is record-level: a field that sits on one row (its form's) is given to
        # every row of the record, before rows are split by form.
        self.export = Export(export.path, export.frame.with_columns(self._patient_id().alias("__patient")),
                             export.malformed, export.sha256)

    def col(self, name: str) -> pl.Expr:
        return pl.col(name) if name in self.columns else pl.lit(None, dtype=pl.String)

    def form_fields(self, form: str) -> list[Field]:
        return [f for f in self.fields.values() if f.form == form and f.name != self.record
                and f.type not in ("descriptive",)]

    def data_columns(self, form: str) -> list[str]:
        cols: list[str] = []
        for f in self.form_fields(form):
            if f.type == "checkbox":
                cols += [c for c in self.columns if c.startswith(f"{f.name}___")]
            elif f.name in self.columns:
                cols.append(f.name)
        return cols

    def present(self, form: str) -> pl.Expr:
        """Rows of this form: its repeating-instrument rows, or non-repeating rows holding its data.

        Outside a row's form every cell is empty; an unticked checkbox (0) is not data.
        """
        checks = []
        for c in self.data_columns(form):
            filled = pl.col(c).is_not_null()
            checks.append(filled & (pl.col(c) != "0") if c in self.checkboxes else filled)
        status = self.col(f"{form}_complete")
        checks.append(status.is_in(["1", "2"]).fill_null(False))
        repeat = self.col("redcap_repeat_instrument")
        return (repeat == form).fill_null(False) | (repeat.is_null() & pl.any_horizontal(checks))

    def row_id(self, form: str, instance: pl.Expr | None = None) -> pl.Expr:
        parts = [pl.col(self.record)]
        if self.longitudinal:
            parts.append(pl.col("redcap_event_name").fill_null(""))
        parts.append(pl.lit(form))
        parts.append(instance if instance is not None
                     else self.col("redcap_repeat_instance").fill_null("1"))
        return pl.concat_str(parts, separator=":")

    def _patient_id(self) -> pl.Expr:
        if self.patient_field == self.record:
            return pl.col(self.record)
        if self.patient_field not in self.columns:
            raise InputError(f"{self.mapping_path}: [redcap] patient_id = {self.patient_field!r} is "
                             "not a column of the export")
        return pl.col(self.patient_field).drop_nulls().first().over(self.record)

    def field(self, name: str, plan: FormPlan, column: str) -> Field:
        name = name.lower()
        if name in self.fields:
            return self.fields[name]
        if name in self.columns:  # export-only columns (e.g. a calculated field left out)
            return Field(name, plan.form, "text", {})
        raise InputError(f"{self.mapping_path}: {plan.where} {column} = {name!r} is neither in the "
                         f"data dictionary nor in the export")


def _decode(project: Project, plan: FormPlan, column: str, source: Any) -> tuple[pl.Expr, pl.Expr | None,
                                                                                   str]:
    """(value, unknown-code flag or None, source field name) for one canonical column."""
    names = source if isinstance(source, list) else [source]
    if len(names) > 1:  # e.g. a date field and a time field -> "date time"
        parts = [pl.col(project.field(n, plan, column).name) for n in names]
        return pl.concat_str(parts, separator=" ", ignore_nulls=True), None, "+".join(names)
    f = project.field(str(names[0]), plan, column)
    codes = {str(k): str(v) for k, v in plan.section.get("codes", {}).get(column, {}).items()}
    # Scores are the raw codes (0-3), never their labels ("Several days").
    keep = (column in plan.section.get("keep_codes", []) or column == "total_score"
            or column.startswith("item_"))
    if f.type == "checkbox":
        boxes = [c for c in project.columns if c.startswith(f"{f.name}___")]
        if not boxes:
            raise InputError(f"{project.export.path.name}: no {f.name}___<code> columns for the "
                             f"checkbox field {f.name!r}")
        labels = []
        for c in boxes:
            code = c.split("___", 1)[1]
            # Export column names lower-case the code; match the dictionary's code loosely.
            raw = next((k for k in f.choices if k.lower() == code), code)
            label = codes.get(raw, raw if keep else f.choices.get(raw, raw))
            labels.append(pl.when(pl.col(c) == "1").then(pl.lit(label)))
        joined = pl.concat_str(labels, separator=";", ignore_nulls=True)
        return pl.when(joined != "").then(joined), None, f.name
    if f.name not in project.columns:
        raise InputError(f"{project.export.path.name}: field {f.name!r} ({plan.where} {column}) is "
                         "not a column of the export")
    table = codes or (f.choices if f.choices and not keep else {})
    if not table:
        return pl.col(f.name), None, f.name
    decoded = pl.col(f.name).replace_strict(list(table), list(table.values()), default=None,
                                            return_dtype=pl.String)
    return decoded, pl.col(f.name).is_not_null() & decoded.is_null(), f.name


def _records_without(project: Project, form: str) -> pl.DataFrame:
    """One row per record that has no row of `form`: the record's first line, and each column's
    first value among the record's rows (patient fields are record-level, as the record id)."""
    frame, record = project.export.frame, project.record
    has_form = frame.filter(project.present(form))[record].unique().to_list()
    rest = frame.filter(pl.col(record).is_not_null() & ~pl.col(record).is_in(has_form))
    return (rest.sort("__line").group_by(record, maintain_order=True)
            .agg(pl.all().drop_nulls().first()).select(frame.columns))


def _form_unit(project: Project, plan: FormPlan, config: Config) -> tuple[LoadUnit, pl.Series]:
    contract = CONTRACTS[plan.table]
    section = plan.section
    frame = project.export.frame
    in_form = frame.filter(project.present(plan.form)).with_columns(__derived=pl.lit(False))
    derived = _records_without(project, plan.form) if plan.table == "patients" else None
    if derived is not None:
        in_form = pl.concat([in_form, derived.with_columns(__derived=pl.lit(True))])
    columns: dict[str, pl.Expr] = {}
    flags: list[tuple[pl.Expr, str, str]] = []  # (unknown-code flag, source field, canonical)
    for column in contract.columns:
        if column in section and column != "instrument":
            value, unknown, source = _decode(project, plan, column, section[column])
            columns[column] = value
            if unknown is not None:
                flags.append((unknown, source, column))
    id_column = contract.id_column
    if plan.table in ("sessions", "assessments") and id_column not in section:
        columns[id_column] = project.row_id(plan.form)
    columns["patient_id"] = pl.col("__patient")
    if plan.table == "assessments":
        columns["instrument"] = pl.lit(section["instrument"])
        for k, name in enumerate(section.get("items", []), start=1):
            value, unknown, source = _decode(project, plan, f"item_{k}", name)
            columns[f"item_{k}"] = value
            if unknown is not None:
                flags.append((unknown, source, f"item_{k}"))
        if "session_instance" in section:
            sessions_form = project.sessions_form
            if sessions_form is None:
                raise InputError(f"{project.mapping_path}: {plan.where} session_instance needs a "
                                 "[sessions] form to link to")
            instance = pl.col(project.field(section["session_instance"], plan, "session_instance").name)
            columns["session_id"] = pl.when(instance.is_not_null()).then(
                project.row_id(sessions_form, instance))

    status_col = f"{plan.form}_complete"
    complete = {str(c) for c in section.get("complete", project.complete)}
    built = in_form.select(
        pl.col("__line"),
        pl.col("__derived"),
        project.col(status_col).alias("__status"),
        *(flag.alias(f"__unknown_{i}") for i, (flag, _, _) in enumerate(flags)),
        *(pl.col(src).alias(f"__raw_{i}") if src in project.columns else pl.lit(None).alias(f"__raw_{i}")
          for i, (_, src, _) in enumerate(flags)),
        *(expr.alias(name) for name, expr in columns.items()),
    )
    rejects: list[Reject] = []
    if status_col in project.columns:
        bad = built.filter(~pl.col("__derived")
                           & ~pl.col("__status").is_in(sorted(complete)).fill_null(False))
        for line, status in bad.select("__line", "__status").iter_rows():
            label = COMPLETE_LABELS.get(status or "", "without a completion status")
            state = f"marked {label} ({status})" if status else label
            rejects.append((line, status_col, status, (
                f"form {plan.form} is {state}; only rows marked "
                f"{' or '.join(COMPLETE_LABELS.get(c, c) + f' ({c})' for c in sorted(complete))} "
                "are loaded: complete the form in REDCap, or add the status to complete in the mapping")))
    for i, (_, source, column) in enumerate(flags):
        hit = built.filter(pl.col(f"__unknown_{i}"))
        for line, raw in hit.select("__line", f"__raw_{i}").iter_rows():
            rejects.append((line, source, raw, (
                f"code {raw!r} of field {source} is not a choice in the data dictionary or under "
                f"codes.{column} in the mapping; add it there")))
    rejected = {r[0] for r in rejects}
    rows = built.filter(~pl.col("__line").is_in(sorted(rejected))).select(
        "__line", *columns
    )
    notes = [f"form {plan.form} -> {plan.table}"
             + (f" ({section['instrument']})" if plan.table == "assessments" else "")
             + f": {in_form.height - (derived.height if derived is not None else 0)} rows of "
             "the form"]
    if status_col not in project.columns:
        notes.append(f"no {status_col} column in the export: every row of form {plan.form} counted "
                     "as complete")
    if derived is not None and derived.height:
        notes.append(f"{derived.height} records have no row of form {plan.form}: patients made from "
                     "their record ids (with mapped fields found in the record's other rows), at "
                     "each record's first line")
    unit = arrow_unit(project.export.path.name, contract, rows.to_arrow(), FORMAT,
                      project.export.sha256, rejects, notes)
    return unit, in_form["__line"]


# ---------------------------------------------------------------- entry point


def _plans(mapping: dict[str, Any], mapping_path: Path, config: Config) -> list[FormPlan]:
    plans: list[FormPlan] = []
    for table in ("patients", "sessions"):
        if table in mapping:
            section = mapping[table]
            check_keys(section, SECTION_KEYS | set(CONTRACTS[table].columns) - {"patient_id"},
                       f"[{table}]", mapping_path)
            if "form" not in section:
                raise InputError(f"{mapping_path}: [{table}] needs form = \"<REDCap form name>\"")
            plans.append(FormPlan(table, str(section["form"]).lower(), section, f"[{table}]"))
    entries = mapping.get("assessments", [])
    if isinstance(entries, dict):
        entries = [entries]
    known_instruments = {normalize_key(n) for n in config.instruments}
    for section in entries:
        check_keys(section, ASSESSMENT_KEYS | set(CONTRACTS["assessments"].columns)
                   - {"patient_id", "instrument"}, "[[assessments]]", mapping_path)
        if "form" not in section or "instrument" not in section:
            raise InputError(f"{mapping_path}: every [[assessments]] needs form and instrument")
        if normalize_key(str(section["instrument"])) not in known_instruments:
            raise InputError(f"{mapping_path}: [[assessments]] instrument {section['instrument']!r} "
                             "is not in the instrument registry; add it under [instruments] in "
                             "the config")
        form = str(section["form"]).lower()
        plans.append(FormPlan("assessments", form, section, f"[[assessments]] ({form})"))
    if not plans:
        raise InputError(f"{mapping_path}: the mapping names no form; add [sessions], [patients] "
                         "and/or [[assessments]] sections (see README, 'REDCap')")
    return plans


def units(data_dir: Path, config: Config, mapping: Path | None) -> tuple[list[LoadUnit], list[str]]:
    mapping_path = default_mapping(data_dir, mapping, MAPPING_NAME)
    if mapping_path is None:
        raise InputError(f"{data_dir}: a REDCap export needs a mapping; pass --mapping FILE or put "
                         f"{MAPPING_NAME} in the folder (see README, 'REDCap')")
    spec = load_mapping(mapping_path, "REDCap")
    check_keys(spec, {"redcap", "patients", "sessions", "assessments", "protocols"}, "the mapping",
               mapping_path)
    settings = spec.get("redcap", {})
    check_keys(settings, {"export", "dictionary", "complete", "patient_id"}, "[redcap]", mapping_path)
    dictionary_path, export_path = find_files(data_dir, settings, mapping_path)
    project = Project(read_export(export_path), read_dictionary(dictionary_path), settings,
                      mapping_path)
    plans = _plans(spec, mapping_path, config)
    forms = {f.form for f in project.fields.values()}
    for plan in plans:
        if plan.form not in forms:
            raise InputError(f"{mapping_path}: {plan.where} form {plan.form!r} is not in the data "
                             f"dictionary (forms: {', '.join(sorted(forms))})")
    project.sessions_form = next((p.form for p in plans if p.table == "sessions"), None)

    result: list[LoadUnit] = []
    covered: list[pl.Series] = []
    for plan in plans:
        unit, lines = _form_unit(project, plan, config)
        result.append(unit)
        covered.append(lines)
    frame = project.export.frame
    seen = pl.concat(covered).unique() if covered else pl.Series([], dtype=pl.Int64)
    unmapped_rows = frame.filter(~pl.col("__line").is_in(seen.to_list())).height
    unmapped = _unmapped_fields(project, plans)
    extra = []
    if unmapped_rows:
        extra.append(f"{unmapped_rows} rows hold no mapped form; not loaded")
    if unmapped:
        extra.append(f"data in fields the mapping does not name, not loaded: {'; '.join(unmapped)}")
    if project.export.malformed:
        extra.append("lines that cannot be split into the header's columns are rejected here")
    first = result[0]
    result[0] = _with(first, extra, project.export.malformed)

    protocols, protocol_path = protocol_units(data_dir, spec, mapping_path, FORMAT)
    used = {dictionary_path, export_path, mapping_path.resolve()}
    if protocol_path:
        used.add(protocol_path)
    ignored = [p.name for p in sorted(data_dir.iterdir())
               if p.is_file() and not p.name.startswith(".")
               and p not in used and p.resolve() not in used]
    return protocols + result, ignored


def _unmapped_fields(project: Project, plans: list[FormPlan]) -> list[str]:
    """Per form, the fields holding data that no mapping key names (a form is not "unmapped"
    when one of its fields fills a column of another form's table)."""
    named = {project.record, project.patient_field}
    for plan in plans:
        for key, value in plan.section.items():
            if key not in ("form", "codes", "keep_codes", "complete", "instrument"):
                named |= {str(v).lower() for v in (value if isinstance(value, list) else [value])}
    frame = project.export.frame
    out = []
    for form in dict.fromkeys(f.form for f in project.fields.values()):
        columns = [c for c in project.data_columns(form) if c.split("___")[0] not in named]
        if not columns:
            continue
        held = frame.select(
            ((pl.col(c).is_not_null() & (pl.col(c) != "0")) if c in project.checkboxes
             else pl.col(c).is_not_null()).any().alias(c) for c in columns).row(0)
        fields = list(dict.fromkeys(c.split("___")[0] for c, h in zip(columns, held, strict=True) if h))
        if fields:
            more = f" and {len(fields) - 5} more" if len(fields) > 5 else ""
            out.append(f"{form} ({', '.join(fields[:5])}{more})")
    return out


def _with(unit: LoadUnit, notes: list[str], rejects: list[Reject]) -> LoadUnit:
    """The same unit with project-level notes and structural rejects added to it."""
    if not notes and not rejects:
        return unit
    inner = unit.stage

    def stage(con, work_dir):  # type: ignore[no-untyped-def]
        staged = inner(con, work_dir)
        staged.notes.extend(notes)
        if rejects:
            con.executemany("INSERT INTO stage_rejects VALUES (?, ?, ?, ?)", [list(r) for r in rejects])
        return staged

    return LoadUnit(unit.label, unit.contract, stage)

