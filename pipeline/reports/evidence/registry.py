"""The curated registry of published IV-ketamine outcome figures (SPEC §2 "Comparison with
published evidence"): `registry.csv` beside this file -> validated, typed `Study` rows.

Every row was copied (facts and citation, never the supporting quote) from the project's
evidence file /work/shared/evidence/evidence.csv, keyed by the same `study_id`, with the same n
(the leading number of that file's `n` text) and the same rates. Rows that file marks
UNVERIFIED, and rows that cannot be used honestly, were left out; `EXCLUDED_SOURCE_ROWS` says
which and why, and the evidence report prints that list.

A row may be pooled into a benchmark rate only when `benchmark = yes`, which requires a DOI or
PMID, a sample size and at least one rate. Rows with `benchmark = no` (typically: the DOI/PMID
was not in the retrieved text) are shown for context and never pooled.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

REGISTRY_PATH = Path(__file__).with_name("registry.csv")

DESIGN_CLASSES = ("RCT", "open-label", "real-world", "meta-analysis")

COLUMNS = (
    "study_id", "authors", "year", "journal", "doi", "pmid", "pmcid", "other_id", "citation_note",
    "design_class", "design", "population", "n", "n_note", "n_remission", "protocol_infusions",
    "protocol_days", "dose_mg_per_kg", "infusion_minutes", "instrument", "response_definition",
    "remission_definition", "timepoint", "response_rate", "remission_rate", "responders",
    "median_days_to_relapse", "comparator", "comparator_response_rate", "benchmark", "notes",
)
REQUIRED_TEXT = ("study_id", "authors", "journal", "design_class", "design", "population",
                 "timepoint")
# Placeholders the source file uses for "we do not know"; they do not count as a value.
PLACEHOLDER = re.compile(r"^\s*(not retrieved|not verified|not stated|unverified)\b", re.I)
DOI_PATTERN = re.compile(r"^10\.\d{4,9}/\S+$")
PMID_PATTERN = re.compile(r"^\d{1,9}$")
STUDY_ID_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")

# Source rows deliberately not in the registry (study_id in evidence.csv -> reason).
EXCLUDED_SOURCE_ROWS: dict[str, str] = {
    "zarate2006": "marked UNVERIFIED in the source: no primary text retrieved.",
    "murrough2013_ajp": "design marked RESPONSE RATES UNVERIFIED; no rate retrieved.",
    "aanhetrot2010": "design marked RESPONSE/RELAPSE FIGURES UNVERIFIED; no rate retrieved.",
    "zheng2019_end": "journal not verified and DOI/PMID not retrieved: citation incomplete.",
    "zheng2019_first": "journal not verified and DOI/PMID not retrieved: citation incomplete.",
    "rasmussen2013": "journal and instrument not verified: citation incomplete.",
    "pharmrep2025_nonresponse": "authors not retrieved; mixes IV and oral ketamine.",
    "sad_crossover_PMC5729569": "authors, year and journal not retrieved; social anxiety (LSAS).",
    "anand2023_elektd_remission": "no n in the source row (figure from a secondary review).",
    "ekstrand2022_ketect": "n (186) covers both arms; the ketamine-arm n was not retrieved.",
    "feder2021_ptsd": "PTSD (CAPS-5, >=30% response); n 30 covers both arms.",
    "singh2016": "no response or remission rate retrieved (MADRS change only).",
    "jelovac2025_karmadep2": "no response or remission rate retrieved (MADRS difference only).",
    "feder2014_ptsd": "no rate reported (PTSD, IES-R change only).",
    "abdallah2022_ptsd_veterans": "no rate reported (PTSD, no significant effect).",
}


class RegistryError(ValueError):
    """A registry row that cannot be used; the message names the file, row and field."""


@dataclass(frozen=True)
class Study:
    """One published figure (one study x timepoint x instrument)."""

    study_id: str
    authors: str
    year: int
    journal: str
    doi: str | None
    pmid: str | None
    pmcid: str | None
    other_id: str | None
    citation_note: str | None
    design_class: str
    design: str
    population: str
    n: int
    n_note: str | None
    n_remission: int | None  # when the remission rate has its own denominator
    protocol_infusions: str | None
    protocol_days: str | None
    dose_mg_per_kg: str | None
    infusion_minutes: str | None
    instrument: str | None
    response_definition: str | None
    remission_definition: str | None
    timepoint: str
    response_rate: float | None
    remission_rate: float | None
    responders: int | None
    median_days_to_relapse: float | None
    comparator: str | None
    comparator_response_rate: float | None
    benchmark: bool
    notes: str | None

    @property
    def has_identifier(self) -> bool:
        return bool(self.doi or self.pmid)

    @property
    def remission_n(self) -> int:
        return self.n_remission if self.n_remission is not None else self.n

    @property
    def first_author(self) -> str:
        return re.split(r"[ ,]", self.authors.strip(), maxsplit=1)[0]

    @property
    def short_label(self) -> str:
        """'Murrough 2013' (first author's surname and year)."""
        return f"{self.first_author} {self.year}"

    @property
    def identifiers(self) -> str:
        """'doi:10.1056/NEJMoa2302399; PMID 37224232' (what the report prints)."""
        parts = []
        if self.doi:
            parts.append(f"doi:{self.doi}")
        if self.pmid:
            parts.append(f"PMID {self.pmid}")
        if self.pmcid:
            parts.append(self.pmcid)
        if self.other_id:
            parts.append(self.other_id)
        return "; ".join(parts) if parts else "no DOI or PMID retrieved"


def _text(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def _fail(path: Path, line: int, study_id: str, field: str, message: str) -> RegistryError:
    label = f"study_id={study_id}" if study_id else "no study_id"
    return RegistryError(f"{path}: row {line} ({label}): field '{field}' {message}")


def parse_row(row: dict[str, str], path: Path, line: int) -> Study:
    """Type and check one CSV row; raise RegistryError naming the row and field."""
    sid = (row.get("study_id") or "").strip()

    def fail(field: str, message: str) -> RegistryError:
        return _fail(path, line, sid, field, message)

    for name in REQUIRED_TEXT:
        value = _text(row.get(name))
        if value is None or PLACEHOLDER.match(value):
            raise fail(name, "is required (a citation field may not be empty or a placeholder)")
    if not STUDY_ID_PATTERN.match(sid):
        raise fail("study_id", f"must be letters, digits and underscores, not {sid!r}")

    def integer(name: str, required: bool = False, minimum: int = 0) -> int | None:
        text = _text(row.get(name))
        if text is None:
            if required:
                raise fail(name, "is required")
            return None
        try:
            value = int(text)
        except ValueError:
            raise fail(name, f"must be a whole number, not {text!r}") from None
        if value < minimum:
            raise fail(name, f"must be at least {minimum}, not {value}")
        return value

    def proportion(name: str) -> float | None:
        text = _text(row.get(name))
        if text is None:
            return None
        try:
            value = float(text)
        except ValueError:
            raise fail(name, f"must be a proportion between 0 and 1, not {text!r}") from None
        if not 0 <= value <= 1:
            raise fail(name, f"must be a proportion between 0 and 1, not {value}"
                             + (" (write 0.536, not 53.6)" if value > 1 else ""))
        return value

    year = integer("year", required=True, minimum=1900)
    n = integer("n", required=True, minimum=1)
    n_remission = integer("n_remission", minimum=1)
    responders = integer("responders")
    response_rate = proportion("response_rate")
    remission_rate = proportion("remission_rate")
    comparator_rate = proportion("comparator_response_rate")
    assert year is not None and n is not None
    if responders is not None and responders > n:
        raise fail("responders", f"({responders}) must not exceed n ({n})")
    relapse_text = _text(row.get("median_days_to_relapse"))
    try:
        relapse = float(relapse_text) if relapse_text else None
    except ValueError:
        raise fail("median_days_to_relapse", f"must be a number, not {relapse_text!r}") from None
    if relapse is not None and relapse < 0:
        raise fail("median_days_to_relapse", "must not be negative")

    design_class = (row.get("design_class") or "").strip()
    if design_class not in DESIGN_CLASSES:
        raise fail("design_class", f"must be one of {', '.join(DESIGN_CLASSES)}, not {design_class!r}")
    if "UNVERIFIED" in (row.get("design") or "").upper():
        raise fail("design", "is marked UNVERIFIED; unverified figures do not enter the registry")
    doi, pmid = _text(row.get("doi")), _text(row.get("pmid"))
    if doi is not None and not DOI_PATTERN.match(doi):
        raise fail("doi", f"must look like 10.xxxx/..., not {doi!r}")
    if pmid is not None and not PMID_PATTERN.match(pmid):
        raise fail("pmid", f"must be digits only, not {pmid!r}")
    benchmark_text = (row.get("benchmark") or "").strip().lower()
    if benchmark_text not in ("yes", "no"):
        raise fail("benchmark", f"must be yes or no, not {benchmark_text!r}")
    benchmark = benchmark_text == "yes"
    if benchmark and not (doi or pmid):
        raise fail("doi", "or 'pmid' is required for a row used as a benchmark (benchmark = yes)")
    if response_rate is None and remission_rate is None:
        raise fail("response_rate", "or 'remission_rate' is required (a row without a rate "
                                    "has nothing to compare)")
    return Study(
        study_id=sid, authors=row["authors"].strip(), year=year, journal=row["journal"].strip(),
        doi=doi, pmid=pmid, pmcid=_text(row.get("pmcid")), other_id=_text(row.get("other_id")),
        citation_note=_text(row.get("citation_note")), design_class=design_class,
        design=row["design"].strip(), population=row["population"].strip(), n=n,
        n_note=_text(row.get("n_note")), n_remission=n_remission,
        protocol_infusions=_text(row.get("protocol_infusions")),
        protocol_days=_text(row.get("protocol_days")),
        dose_mg_per_kg=_text(row.get("dose_mg_per_kg")),
        infusion_minutes=_text(row.get("infusion_minutes")),
        instrument=_text(row.get("instrument")),
        response_definition=_text(row.get("response_definition")),
        remission_definition=_text(row.get("remission_definition")),
        timepoint=row["timepoint"].strip(), response_rate=response_rate,
        remission_rate=remission_rate, responders=responders, median_days_to_relapse=relapse,
        comparator=_text(row.get("comparator")), comparator_response_rate=comparator_rate,
        benchmark=benchmark, notes=_text(row.get("notes")),
    )


def load_registry(path: str | Path | None = None) -> dict[str, Study]:
    """Read and validate the registry CSV; {study_id: Study} in file order."""
    path = Path(path) if path is not None else REGISTRY_PATH
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise RegistryError(f"cannot read evidence registry {path}: {exc.strerror}") from exc
    reader = csv.DictReader(text.splitlines())
    header = reader.fieldnames or []
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise RegistryError(f"{path}: missing column(s) {', '.join(missing)}")
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise RegistryError(f"{path}: unknown column(s) {', '.join(unknown)}")
    studies: dict[str, Study] = {}
    for index, row in enumerate(reader, start=2):
        if None in row:
            raise RegistryError(f"{path}: row {index}: more fields than the header has columns")
        study = parse_row(row, path, index)
        if study.study_id in studies:
            raise _fail(path, index, study.study_id, "study_id", "is a duplicate")
        studies[study.study_id] = study
    if not studies:
        raise RegistryError(f"{path}: the registry has no rows")
    return studies
