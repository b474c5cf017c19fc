"""Payer criteria for documentation packets (README "Configuration", [payer]): rule sets,
config, verdicts.

A criterion is evaluated on one course's plain data and returns a verdict — `met`, `not met`
or `not documented` — with the evidence used (which score, date and value; which trials), so a
reviewer can check it by hand. Defaults are a common denominator of published payer policies;
every number is overridable under `[payer]` in the TOML config (`payer_rules`).

"not documented" never means "not met": it says the record lacks what the rule needs, so the
clinic can complete the documentation instead of the patient being denied on a gap.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import Config, ConfigError
from pipeline.outcomes import reduced_by_at_least

MET, NOT_MET, NOT_DOCUMENTED = "met", "not met", "not documented"


@dataclass(frozen=True)
class DiagnosisRule:
    """ICD-10 code of the patient starts with one of the prefixes (F32 single, F33 recurrent MDD)."""

    code_prefixes: tuple[str, ...] = ("F32", "F33")


@dataclass(frozen=True)
class EntryRule:
    """Baseline severity: the latest score of a listed scale taken no later than the start of
    infusion 1 and dated at most `window_days` calendar days before its day, at or above the
    scale's threshold (any one scale suffices)."""

    window_days: int = 28
    thresholds: dict[str, float] = field(
        default_factory=lambda: {"PHQ-9": 15, "MADRS": 28, "HAM-D17": 17}
    )


@dataclass(frozen=True)
class ResistanceRule:
    """Treatment resistance: >= min_trials failed adequate antidepressant trials in the episode."""

    min_trials: int = 2
    min_weeks: float = 6
    max_improvement_pct: float = 25
    require_adequate_dose: bool = True
    episodes: tuple[str, ...] = ("current",)
    excluded_classes: tuple[str, ...] = ("augmentation",)


@dataclass(frozen=True)
class ContinuationRule:
    """Documented improvement: >= min_reduction_pct reduction from the course baseline on a
    listed scale, or (when `reliable_improvement`) a reliable improvement on it."""

    instruments: tuple[str, ...] = ("PHQ-9",)
    min_reduction_pct: float = 50
    reliable_improvement: bool = True


@dataclass(frozen=True)
class PayerRules:
    name: str = "Default payer criteria"
    diagnosis: DiagnosisRule = field(default_factory=DiagnosisRule)
    entry: EntryRule = field(default_factory=EntryRule)
    resistance: ResistanceRule = field(default_factory=ResistanceRule)
    continuation: ContinuationRule = field(default_factory=ContinuationRule)


# ---------------------------------------------------------------------------------------------
# Config: [payer] -> PayerRules, with errors that name the file and key

_NUMBER = (int, float)


def _where(config: Config, key: str) -> str:
    return f"{config.source or 'config'}: [payer] {key}"


def _number(config: Config, key: str, value: Any, minimum: float = 0,
            maximum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, _NUMBER) or value < minimum or (
            maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{_where(config, key)} must be a number {bound}, not {value!r}")
    return value


def _strings(config: Config, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{_where(config, key)} must be a list of non-empty strings, not {value!r}")
    return tuple(value)


def _table(config: Config, key: str, value: Any, known: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConfigError(f"{_where(config, key)} must be a table")
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"{_where(config, key + '.' + unknown[0])}: unknown key; known keys: "
                          f"{', '.join(sorted(known))}")
    return value


def _instrument(config: Config, key: str, name: str) -> str:
    if name not in config.instruments:
        raise ConfigError(f"{_where(config, key)}: unknown instrument {name!r}; known: "
                          f"{', '.join(sorted(config.instruments))}")
    return name


def payer_rules(config: Config) -> PayerRules:
    """The rule set in force: code defaults, overridden by the config's `[payer]` section."""
    raw = _table(config, "", config.payer or {}, {"rule_set", "diagnosis", "entry", "resistance",
                                                  "continuation"}) if config.payer else {}
    name = raw.get("rule_set", PayerRules.name)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{_where(config, 'rule_set')} must be a non-empty string")

    diagnosis = DiagnosisRule()
    if "diagnosis" in raw:
        table = _table(config, "diagnosis", raw["diagnosis"], {"code_prefixes"})
        if "code_prefixes" in table:
            diagnosis = DiagnosisRule(tuple(p.upper() for p in _strings(
                config, "diagnosis.code_prefixes", table["code_prefixes"])))

    entry = EntryRule()
    if "entry" in raw:
        table = _table(config, "entry", raw["entry"], {"window_days", "thresholds"})
        window = entry.window_days
        if "window_days" in table:
            window = table["window_days"]
            if isinstance(window, bool) or not isinstance(window, int) or window < 0:
                raise ConfigError(f"{_where(config, 'entry.window_days')} must be a whole number "
                                  f">= 0, not {window!r}")
        thresholds = entry.thresholds
        if "thresholds" in table:
            given = table["thresholds"]
            if not isinstance(given, dict) or not given:
                raise ConfigError(f"{_where(config, 'entry.thresholds')} must be a table of "
                                  'instrument = score, e.g. { "PHQ-9" = 15 }')
            thresholds = {}
            for inst, value in given.items():
                key = f'entry.thresholds."{inst}"'
                _instrument(config, key, inst)
                thresholds[inst] = _number(config, key, value)
        entry = EntryRule(window, thresholds)

    resistance = ResistanceRule()
    if "resistance" in raw:
        table = _table(config, "resistance", raw["resistance"], {
            "min_trials", "min_weeks", "max_improvement_pct", "require_adequate_dose", "episodes",
            "excluded_classes"})
        values: dict[str, Any] = {}
        if "min_trials" in table:
            trials = table["min_trials"]
            if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
                raise ConfigError(f"{_where(config, 'resistance.min_trials')} must be a whole "
                                  f"number >= 1, not {trials!r}")
            values["min_trials"] = trials
        if "min_weeks" in table:
            values["min_weeks"] = _number(config, "resistance.min_weeks", table["min_weeks"])
        if "max_improvement_pct" in table:
            values["max_improvement_pct"] = _number(
                config, "resistance.max_improvement_pct", table["max_improvement_pct"], -100, 100)
        if "require_adequate_dose" in table:
            if not isinstance(table["require_adequate_dose"], bool):
                raise ConfigError(f"{_where(config, 'resistance.require_adequate_dose')} must be "
                                  "true or false")
            values["require_adequate_dose"] = table["require_adequate_dose"]
        if "episodes" in table:
            episodes = tuple(e.lower() for e in _strings(config, "resistance.episodes",
                                                         table["episodes"]))
            if not set(episodes) <= {"current", "prior"}:
                raise ConfigError(f"{_where(config, 'resistance.episodes')} may hold only "
                                  '"current" and "prior"')
            values["episodes"] = episodes
        if "excluded_classes" in table:
            values["excluded_classes"] = tuple(c.lower() for c in _strings(
                config, "resistance.excluded_classes", table["excluded_classes"]))
        resistance = ResistanceRule(**values)

    continuation = ContinuationRule()
    if "continuation" in raw:
        table = _table(config, "continuation", raw["continuation"], {
            "instruments", "min_reduction_pct", "reliable_improvement"})
        values = {}
        if "instruments" in table:
            names = _strings(config, "continuation.instruments", table["instruments"])
            values["instruments"] = tuple(_instrument(config, "continuation.instruments", n)
                                          for n in names)
        if "min_reduction_pct" in table:
            values["min_reduction_pct"] = _number(config, "continuation.min_reduction_pct",
                                                  table["min_reduction_pct"], 0, 100)
        if "reliable_improvement" in table:
            if not isinstance(table["reliable_improvement"], bool):
                raise ConfigError(f"{_where(config, 'continuation.reliable_improvement')} must "
                                  "be true or false")
            values["reliable_improvement"] = table["reliable_improvement"]
        continuation = ContinuationRule(**values)
    return PayerRules(name.strip(), diagnosis, entry, resistance, continuation)


# ---------------------------------------------------------------------------------------------
# Verdicts. Each returns {"key", "title", "rule", "verdict", "summary", "evidence": [str, ...]}.


def _num(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:g}"


def _day(value: dt.date | dt.datetime) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M") if value.time() != dt.time() else value.date().isoformat()
    return value.isoformat()


def _criterion(key: str, title: str, rule: str, verdict: str, summary: str,
               evidence: list[str]) -> dict[str, Any]:
    return {"key": key, "title": title, "rule": rule, "verdict": verdict, "summary": summary,
            "evidence": evidence}


def evaluate_diagnosis(diagnosis_code: str | None, rule: DiagnosisRule) -> dict[str, Any]:
    text = f"ICD-10 diagnosis code starting with {' or '.join(rule.code_prefixes)}"
    if not diagnosis_code:
        return _criterion("diagnosis", "Diagnosis", text, NOT_DOCUMENTED,
                          "No ICD-10 diagnosis code in the patient record.", [])
    code = diagnosis_code.strip().upper()
    met = any(code.startswith(prefix) for prefix in rule.code_prefixes)
    return _criterion("diagnosis", "Diagnosis", text, MET if met else NOT_MET,
                      f"Diagnosis code {code} {'is' if met else 'is not'} in the covered range.",
                      [f"Patient record: diagnosis_code {code}"])


def entry_scores(scores: list[dict[str, Any]], course_start: dt.datetime, rule: EntryRule,
                 ) -> dict[str, dict[str, Any] | None]:
    """Per threshold instrument, the score that documents baseline severity (or None).

    Same choice rule as the baseline (docs/definitions.md "Baseline"; latest `scored_at` not
    after the start of infusion 1; ties -> the higher score), with the payer's own window: so
    when window_days >= baseline_window_days it is the course baseline of the outcomes engine
    whenever one exists.
    scores: dicts with instrument, scored_at, score_day, total_score.
    """
    first_day = course_start.date()
    earliest = first_day - dt.timedelta(days=rule.window_days)
    chosen: dict[str, dict[str, Any] | None] = {}
    for instrument in rule.thresholds:
        candidates = [
            s for s in scores
            if s["instrument"] == instrument and s["scored_at"] <= course_start
            and s["score_day"] >= earliest
        ]
        chosen[instrument] = max(candidates, key=lambda s: (s["scored_at"], s["total_score"]),
                                 default=None)
    return chosen


def evaluate_entry(scores: list[dict[str, Any]], course_start: dt.datetime,
                   rule: EntryRule) -> dict[str, Any]:
    """Met when any listed scale's baseline-window score reaches its threshold."""
    bars = " or ".join(f"{inst} ≥ {_num(v)}" for inst, v in rule.thresholds.items())
    text = (f"Baseline severity {bars}, the latest score within {rule.window_days} days before "
            f"infusion 1 ({_day(course_start)})")
    chosen = entry_scores(scores, course_start, rule)
    evidence, met_by = [], []
    for instrument, score in chosen.items():
        threshold = rule.thresholds[instrument]
        if score is None:
            evidence.append(f"{instrument}: no score in the window")
            continue
        reached = score["total_score"] >= threshold
        if reached:
            met_by.append(instrument)
        evidence.append(f"{instrument} {_num(score['total_score'])} on {_day(score['scored_at'])} "
                        f"({'≥' if reached else '<'} {_num(threshold)})")
    if met_by:
        verdict, summary = MET, f"Baseline severity documented on {', '.join(met_by)}."
    elif any(score is not None for score in chosen.values()):
        verdict, summary = NOT_MET, "Baseline scores are documented but below every threshold."
    else:
        verdict, summary = NOT_DOCUMENTED, (
            f"No {'/'.join(rule.thresholds)} score in the {rule.window_days} days before infusion 1.")
    return _criterion("entry", "Baseline severity (initial authorisation)", text, verdict,
                      summary, evidence)


def classify_trial(trial: dict[str, Any], course_start_day: dt.date,
                   rule: ResistanceRule) -> tuple[str, str]:
    """('counts' | 'incomplete' | 'excluded', reason) for one antidepressant trial.

    `incomplete`: the record lacks a value the rule needs (could count once documented).
    """
    drug_class = (trial.get("drug_class") or "").lower()
    if drug_class and drug_class in rule.excluded_classes:
        return "excluded", f"{drug_class} is not an antidepressant trial"
    if trial["start_date"] >= course_start_day:
        return "excluded", "started on or after infusion 1"
    missing: list[str] = []
    episode = trial.get("episode")
    if episode is None:
        missing.append("episode")
    elif episode not in rule.episodes:
        return "excluded", f"{episode} episode"
    if rule.require_adequate_dose:
        if trial.get("adequate_dose") is None:
            missing.append("dose adequacy")
        elif not trial["adequate_dose"]:
            return "excluded", "dose not adequate"
    if trial.get("end_date") is None:
        missing.append("end date")
    else:
        weeks = (trial["end_date"] - trial["start_date"]).days / 7
        if weeks < rule.min_weeks:
            return "excluded", f"{weeks:.1f} weeks < {_num(rule.min_weeks)}"
    improvement = trial.get("improvement_pct")
    if improvement is None:
        missing.append("improvement")
    elif improvement > rule.max_improvement_pct:
        return "excluded", f"improved {_num(improvement)}% > {_num(rule.max_improvement_pct)}%"
    if missing:
        return "incomplete", "not documented: " + ", ".join(missing)
    return "counts", "adequate trial, inadequate response"


def evaluate_resistance(trials: list[dict[str, Any]], course_start_day: dt.date,
                        rule: ResistanceRule) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Treatment resistance from treatment_history rows; (criterion, trials with classification).

    No rows for the patient -> not documented. Enough qualifying trials -> met. Too few, but
    enough once incomplete rows were documented -> not documented. Otherwise not met.
    """
    dose = "adequate dose, " if rule.require_adequate_dose else ""
    text = (f"≥ {rule.min_trials} antidepressant trials ({dose}≥ {_num(rule.min_weeks)} weeks, "
            f"{'/'.join(rule.episodes)} episode) with ≤ {_num(rule.max_improvement_pct)}% improvement")
    classified = []
    for trial in trials:
        status, reason = classify_trial(trial, course_start_day, rule)
        classified.append({**trial, "qualifies": status, "reason": reason})
    if not trials:
        return _criterion("resistance", "Treatment resistance", text, NOT_DOCUMENTED,
                          "No antidepressant trial history in the record.", []), classified
    counting = [t for t in classified if t["qualifies"] == "counts"]
    incomplete = [t for t in classified if t["qualifies"] == "incomplete"]
    evidence = [
        f"{t['medication']}"
        + (f" ({t['drug_class']})" if t.get("drug_class") else "")
        + f", from {_day(t['start_date'])}: "
        + ("counts" if t["qualifies"] == "counts" else t["qualifies"]) + f" – {t['reason']}"
        for t in classified
    ]
    n = len(counting)
    if n >= rule.min_trials:
        verdict, summary = MET, f"{n} qualifying trials documented (≥ {rule.min_trials} required)."
    elif n + len(incomplete) >= rule.min_trials:
        verdict, summary = NOT_DOCUMENTED, (
            f"{n} qualifying trial(s); {len(incomplete)} more lack documentation needed to decide.")
    else:
        verdict, summary = NOT_MET, (
            f"{n} qualifying trial(s) documented; {rule.min_trials} required.")
    return _criterion("resistance", "Treatment resistance", text, verdict, summary,
                      evidence), classified


def evaluate_continuation(outcomes: list[dict[str, Any]], rule: ContinuationRule,
                          reliable_change: dict[str, float | None]) -> dict[str, Any]:
    """Documented improvement, read from the outcomes engine's course rows (docs/definitions.md).

    outcomes: course_outcomes rows of this course (baseline_score, endpoint_score, pct_change,
    reliable_improvement, evaluable, not_evaluable_reason, baseline_at, endpoint_at).
    The reduction test is the engine's own `reduced_by_at_least` (pipeline/outcomes.py), with
    the payer's bar instead of `response_pct`, without rounding.
    """
    alternatives = [f"≥ {_num(rule.min_reduction_pct)}% reduction from the course baseline"]
    if rule.reliable_improvement:
        alternatives.append("a reliable improvement")
    text = f"{' or '.join(alternatives)} on {' or '.join(rule.instruments)}"
    rows = {r["instrument"]: r for r in outcomes if r["instrument"] in rule.instruments}
    evidence, met_by, evaluable = [], [], False
    for instrument in rule.instruments:
        row = rows.get(instrument)
        if row is None or not row["evaluable"]:
            reason = row["not_evaluable_reason"] if row is not None else "no score"
            evidence.append(f"{instrument}: not evaluable ({reason})")
            continue
        evaluable = True
        baseline, endpoint = row["baseline_score"], row["endpoint_score"]
        reduced = bool(reduced_by_at_least(endpoint, baseline, rule.min_reduction_pct))
        reliable = bool(row["reliable_improvement"]) if rule.reliable_improvement else False
        line = (f"{instrument} baseline {_num(baseline)} ({_day(row['baseline_at'])}) → latest "
                f"{_num(endpoint)} ({_day(row['endpoint_at'])}): change {_pct(row['pct_change'])}")
        line += f"; ≥ {_num(rule.min_reduction_pct)}% reduction: {'yes' if reduced else 'no'}"
        if rule.reliable_improvement:
            threshold = reliable_change.get(instrument)
            if row["reliable_improvement"] is None:
                line += "; reliable change not defined for this scale"
            else:
                line += (f"; reliable improvement (≥ {_num(threshold)} points): "
                         f"{'yes' if reliable else 'no'}")
        evidence.append(line)
        if reduced or reliable:
            met_by.append(instrument)
    if met_by:
        verdict, summary = MET, f"Documented improvement on {', '.join(met_by)}."
    elif evaluable:
        verdict, summary = NOT_MET, "Baseline and follow-up documented; improvement below the bar."
    else:
        verdict, summary = NOT_DOCUMENTED, "No baseline with a follow-up score on the listed scales."
    return _criterion("continuation", "Documented improvement (continuation)", text, verdict,
                      summary, evidence)


def _pct(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:+.1f}%".replace("-", "−")
