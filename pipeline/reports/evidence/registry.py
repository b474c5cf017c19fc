"""The curated registry of published IV-ketamine outcome figures: `registry.csv` beside this
file -> validated, typed `Study` rows (the columns are described in docs/benchmarks.md).

Every row was copied (facts and citation, never the supporting quote) from the project's
evidence file, keyed by the same `study_id`, with the same n (the leading number of that file's
`n` text) and the same rates. Rows that file marks UNVERIFIED, and rows that cannot be used
honestly, were left out; `EXCLUDED_SOURCE_ROWS` says which and why.

Two columns decide whether a row may enter a pooled benchmark, both data, never words in a
note: `benchmark = yes` (the citation is complete: a DOI or PMID) and `pooling = poolable` (the
rate is responders / n of one cohort). Any other `pooling` value names why not
(`POOLING_REASONS`) and `pooling_note` says it in the source's words. A row whose binomial n
(`n_response`, else `n`) does not give its printed response rate within rounding is refused.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REGISTRY_PATH = Path(__file__).with_name("registry.csv")

DESIGN_CLASSES = ("RCT", "open-label", "real-world", "meta-analysis")

COLUMNS = (
    "study_id", "authors", "year", "journal", "doi", "pmid", "pmcid", "other_id", "citation_note",
    "design_class", "design", "population", "n", "n_note", "n_response", "n_remission",
    "protocol_infusions", "protocol_days", "dose_mg_per_kg", "infusion_minutes", "instrument",
    "response_definition", "remission_definition", "timepoint", "response_rate", "remission_rate",
    "response_ci_low", "response_ci_high", "remission_ci_low", "remission_ci_high", "responders",
    "median_days_to_relapse", "comparator", "comparator_response_rate", "benchmark", "pooling",
    "pooling_note", "notes",
)

# `pooling`: what kind of figure the response rate is. Only `poolable` rows enter a benchmark;
# each other value is the reason a row is shown for context only.
POOLABLE = "poolable"
POOLING_REASONS: dict[str, str] = {
    "kaplan_meier": "Kaplan–Meier cumulative estimate, not a responders / n proportion",
    "meta_analytic": "meta-analytic pooled rate without the ketamine-arm n",
    "pre_dose": "scored before each dose, not at the end of the series",
    "secondary_source": "figure seen only in a secondary source",
    "denominator_unknown": "the printed rates are not whole counts of the row's n",
}
# Kinds whose rate is responders / n of one cohort: they have a binomial n (and a Wilson
# interval when no published CI is held), whether or not they are pooled.
BINOMIAL_KINDS = (POOLABLE, "pre_dose", "secondary_source")
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
    n_response: int | None  # the evaluable n the response rate uses, when it is not n
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
    response_ci: tuple[float, float] | None  # the published 95% CI, where the source gives one
    remission_ci: tuple[float, float] | None
    responders: int | None
    median_days_to_relapse: float | None
    comparator: str | None
    comparator_response_rate: float | None
    benchmark: bool
    pooling: str  # POOLABLE or a key of POOLING_REASONS
    pooling_note: str | None
    notes: str | None
    remission_fits_n: bool = True  # the remission rate is a whole count of remission_n

    @property
    def has_identifier(self) -> bool:
        return bool(self.doi or self.pmid)

    @property
    def poolable(self) -> bool:
        """May enter a pooled benchmark: complete citation and a responders / n proportion."""
        return self.benchmark and self.pooling == POOLABLE and self.response_rate is not None

    @property
    def not_pooled_reason(self) -> str | None:
        """Why the row never enters a benchmark (None when it may): from the data columns."""
        if self.pooling != POOLABLE:
            return POOLING_REASONS[self.pooling]
        if not self.benchmark:
            return "no DOI or PMID retrieved"
        if self.response_rate is None:
            return "no response rate"
        return None

    @property
    def binomial_n(self) -> int | None:
        """The denominator of the response rate when it is responders / n of one cohort."""
        if self.pooling not in BINOMIAL_KINDS:
            return None
        return self.n_response if self.n_response is not None else self.n

    @property
    def remission_binomial_n(self) -> int | None:
        """The remission rate's denominator, when the rate is a whole count of it."""
        if self.pooling not in BINOMIAL_KINDS or not self.remission_fits_n:
            return None
        return self.n_remission if self.n_remission is not None else self.binomial_n

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
    n_response = integer("n_response", minimum=1)
    n_remission = integer("n_remission", minimum=1)
    responders = integer("responders")
    response_rate = proportion("response_rate")
    remission_rate = proportion("remission_rate")
    comparator_rate = proportion("comparator_response_rate")
    assert year is not None and n is not None
    for name, count in (("n_response", n_response), ("n_remission", n_remission)):
        if count is not None and count > n:
            raise fail(name, f"({count}) must not exceed n ({n})")

    def interval(measure: str, rate: float | None) -> tuple[float, float] | None:
        low, high = proportion(f"{measure}_ci_low"), proportion(f"{measure}_ci_high")
        if low is None and high is None:
            return None
        if low is None or high is None:
            raise fail(f"{measure}_ci_{'low' if low is None else 'high'}",
                       "is required when the other end of the published CI is given")
        if rate is None or not low <= rate <= high:
            raise fail(f"{measure}_ci_low", f"and _high ({low}-{high}) must hold the printed "
                                            f"{measure}_rate ({rate})")
        return low, high

    response_ci = interval("response", response_rate)
    remission_ci = interval("remission", remission_rate)
    pooling = (row.get("pooling") or "").strip()
    if pooling != POOLABLE and pooling not in POOLING_REASONS:
        raise fail("pooling", f"must be one of {', '.join((POOLABLE, *POOLING_REASONS))}, "
                              f"not {pooling!r}")
    pooling_note = _text(row.get("pooling_note"))
    if pooling != POOLABLE and pooling_note is None:
        raise fail("pooling_note", f"is required when pooling is {pooling!r}: say why the row "
                                   "is not pooled")
    remission_fits = _check_counts(row, fail, pooling, n, n_response, responders)
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
        n_note=_text(row.get("n_note")), n_response=n_response, n_remission=n_remission,
        protocol_infusions=_text(row.get("protocol_infusions")),
        protocol_days=_text(row.get("protocol_days")),
        dose_mg_per_kg=_text(row.get("dose_mg_per_kg")),
        infusion_minutes=_text(row.get("infusion_minutes")),
        instrument=_text(row.get("instrument")),
        response_definition=_text(row.get("response_definition")),
        remission_definition=_text(row.get("remission_definition")),
        timepoint=row["timepoint"].strip(), response_rate=response_rate,
        remission_rate=remission_rate, response_ci=response_ci, remission_ci=remission_ci,
        responders=responders, median_days_to_relapse=relapse,
        comparator=_text(row.get("comparator")), comparator_response_rate=comparator_rate,
        benchmark=benchmark, pooling=pooling, pooling_note=pooling_note,
        notes=_text(row.get("notes")), remission_fits_n=remission_fits,
    )


def printed_window(text: str) -> tuple[float, float]:
    """[low, high) of the true proportions a printed rate can stand for.

    The rate may have been rounded to its last printed digit or truncated there (Shiroma 2014
    prints 11/12 as 91.6%); a rate printed as 0.5 is read as a whole percent (50%).
    """
    value = float(text)
    unit = 10.0 ** -max(len(text.strip().partition(".")[2]), 2)
    return value - unit / 2 - 1e-9, value + unit - 1e-9


def count_fits(count: int, n: int, text: str) -> bool:
    """count / n is what the printed rate `text` says, within rounding or truncation."""
    low, high = printed_window(text)
    return low <= count / n < high


def some_count_fits(n: int, text: str) -> bool:
    """Some whole count k of n gives the printed rate `text` within rounding or truncation."""
    low, _ = printed_window(text)
    k = max(math.ceil(low * n), 0)
    return k <= n and count_fits(k, n, text)


def _check_counts(row: dict[str, str], fail: Callable[[str, str], RegistryError], pooling: str,
                  n: int, n_response: int | None, responders: int | None) -> bool:
    """Refuse a responders / n row whose counts disagree with its printed rate; return whether
    the remission rate is a whole count of its own n (no interval is printed when it is not)."""
    rate_text = (row.get("response_rate") or "").strip()
    if pooling not in BINOMIAL_KINDS:
        if n_response is not None or responders is not None:
            field = "n_response" if n_response is not None else "responders"
            raise fail(field, f"applies only to a responders / n proportion, not to a row whose "
                              f"pooling is {pooling!r}")
        return False
    binomial_n = n_response if n_response is not None else n
    if responders is not None:
        if not rate_text:
            raise fail("response_rate", "is required when responders is given")
        if responders > binomial_n:
            raise fail("responders", f"({responders}) must not exceed n ({binomial_n})")
        if not count_fits(responders, binomial_n, rate_text):
            raise fail("responders", f"{responders} / {binomial_n} = {responders / binomial_n:.1%} "
                                     f"disagrees with the printed response_rate {rate_text} beyond "
                                     "rounding; set n_response to the evaluable n the rate uses")
    elif rate_text and not some_count_fits(binomial_n, rate_text):
        raise fail("response_rate", f"{rate_text} is not a whole number of responders out of "
                                    f"{binomial_n} within rounding; set n_response to the evaluable "
                                    "n the rate uses, or pooling = denominator_unknown")
    remission_text = (row.get("remission_rate") or "").strip()
    remission_n = _whole(row.get("n_remission")) or binomial_n
    return not remission_text or some_count_fits(remission_n, remission_text)


def _whole(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text else None


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
