"""Methods text (docs/definitions.md): one plain sentence per definition, with the settings in
force, and the labels every report prints for the configured cut-offs.

Reports print these so a reader knows exactly how every figure was computed. A label that names a
cut-off (a response is a reduction of at least `response_pct`; counts from 1 to
`small_cell_max` print as "<11") is built here from the config, so changing the config changes
every label through this one place.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.config import Config, Definitions
from pipeline.formatting import Suppressed
from pipeline.metrics import HIGH_BP
from pipeline.outcomes import SAFETY_ITEM, TIMING_CLASSES


@dataclass(frozen=True)
class Labels:
    """The configured definitions as the reports print them."""

    response_pct: str  # "50": a response is a reduction of at least this many percent
    partial_pct: str  # "25": a partial response at least this, and less than response_pct
    partial_top: str  # "49": the largest whole percent of a partial response
    response_bar: str  # "half the baseline": what a post score must reach to count as response
    small_cell_max: int  # counts from 1 to this are suppressed
    marker: str  # "<11": how such a count prints

    def fewer_than(self) -> str:
        """'fewer than 11' (courses): what "<11" means."""
        return f"fewer than {self.small_cell_max + 1}"

    def small_range(self) -> str:
        """'1–10': the suppressed counts."""
        return f"1–{self.small_cell_max}"


def _pct(value: float) -> str:
    return f"{value:g}"


def labels(definitions: Definitions) -> Labels:
    remaining = 100 - definitions.response_pct
    return Labels(
        response_pct=_pct(definitions.response_pct),
        partial_pct=_pct(definitions.partial_response_pct),
        partial_top=_pct(definitions.response_pct - 1),
        response_bar="half the baseline" if remaining == 50 else f"{_pct(remaining)}% of the baseline",
        small_cell_max=definitions.small_cell_max,
        marker=str(Suppressed(definitions.small_cell_max)),
    )


def _days(n: int) -> str:
    return f"{n} calendar day" + ("" if n == 1 else "s")


def _num(value: float | None) -> str:
    if value is None:
        return "not defined"
    return f"{value:g}"


def instrument_sentence(config: Config, name: str) -> str:
    inst = config.instruments[name]
    parts = [f"{inst.name}: total {_num(inst.total_min)}–{_num(inst.total_max)}"]
    if inst.remission is not None:
        parts.append(f"remission at an endpoint ≤ {_num(inst.remission)}")
    if inst.caseness is not None:
        parts.append(f"caseness at ≥ {_num(inst.caseness)}")
    if inst.reliable_change is not None:
        parts.append(f"reliable change of {_num(inst.reliable_change)} points")
    else:
        parts.append("no reliable-change threshold (those columns are left empty)")
    return "; ".join(parts) + "."


def methods_sentences(config: Config) -> list[dict[str, str]]:
    """[{"definition": name, "text": sentence}, ...] in the order of docs/definitions.md."""
    d = config.definitions
    rp, pp = labels(d).response_pct, labels(d).partial_pct
    timing = ", ".join(f"{c.key} ({c.span('{} or more')})" for c in TIMING_CLASSES)
    systolic, diastolic = HIGH_BP
    item = SAFETY_ITEM
    sentences = [
        ("Administered infusion", "An administered infusion is a session with status "
         "completed or aborted; cancelled sessions are kept but are not infusions."),
        ("Course", "A course is a patient's consecutive administered infusions under one "
         "protocol; a course_id in the export wins, otherwise a new course starts when the "
         f"protocol changes or more than {_days(d.course_gap_days)} pass between infusions."),
        ("As-of date", "Sessions and scores dated after the as-of day are ignored."),
        ("Course status", "A course is completed when it has at least the protocol's planned "
         "infusions, discontinued when it has fewer and no infusion for more than "
         f"{_days(d.course_gap_days)} before the as-of day, and in progress otherwise; "
         "in-progress courses are reported but left out of outcome rates."),
        ("Baseline", "Baseline: the latest score of the instrument taken no later than the "
         "start of infusion 1 and dated no earlier than "
         f"{_days(d.baseline_window_days)} before the day of infusion 1; a date-only score on "
         "the day of infusion 1 counts unless its timing is post, and of two scores at the same "
         "time the higher is used."),
        ("Post-baseline scores", "Post-baseline scores are those taken after the start of "
         f"infusion 1, dated no later than {_days(d.endpoint_window_days)} after the day of the "
         "last infusion, and before the patient's next course; a date-only post score is "
         "placed at the end of its day."),
        ("Endpoint", "Endpoint: the last post-baseline score (the higher of two at the same "
         "time)."),
        ("Evaluable", "A course is evaluable when it has a baseline above 0 and an endpoint; "
         "otherwise it is not evaluable with the reason (no baseline, zero baseline, no "
         "follow-up score) and its outcome columns are empty."),
        ("Category", f"Percent change is (endpoint − baseline) / baseline × 100; response is a "
         f"reduction of at least {rp}%, partial response at least {pp}% but less than {rp}%, "
         f"and non-response less than {pp}%."),
        ("Remission", "Remission is an endpoint at or below the instrument's remission cutoff, "
         "counted only where the baseline was above the cutoff."),
        ("Reliable change", "Reliable improvement (deterioration) is a fall (rise) from "
         "baseline to endpoint of at least the instrument's reliable-change threshold."),
        ("Recovery", "Recovery (NHS Talking Therapies style) is a baseline at or above the "
         "caseness cutoff and an endpoint below it; reliable recovery is recovery with "
         "reliable improvement."),
        ("Infusions to response", "Infusions to response is the smallest number of infusions "
         f"after which a post-baseline score was at most {100 - d.response_pct:g}% of baseline; "
         f"timing is {timing} or never."),
        ("Rates", "Rates are computed per protocol and instrument over evaluable courses that "
         "are not in progress, each with a 95% Wilson score interval; the intention-to-treat "
         "response rate divides responders by all courses not in progress with a baseline "
         "above 0."),
        ("Cumulative response", "Cumulative response by infusion number is a Kaplan–Meier "
         "estimate, courses censored at their last scored infusion; the median is the first "
         "infusion number at which half had responded."),
        ("Same-session effect", "The same-session effect compares a pre score and a same-day "
         f"post score around infusion 1: the mean change and the share with a {rp}% or greater "
         "reduction; not measured where no such pair exists."),
        ("Durability", "Durability follows courses with an endpoint response: days from the "
         f"endpoint to the first later score with less than {rp}% improvement from baseline "
         "(relapse), Kaplan–Meier with censoring at the last score."),
        ("Safety", "Safety: adverse events per 100 administered infusions by type, the share of "
         f"infusions with a recorded blood pressure reaching systolic ≥ {systolic} or diastolic "
         f"≥ {diastolic}, and the share of infusions aborted. A {item[0]} item {item[1]} above 0 "
         "is flagged."),
        ("Reporting month", "A course's outcome date is the day its endpoint window closes "
         f"(last infusion + {_days(d.endpoint_window_days)}) when completed, or the day it "
         f"became discontinued (last infusion + {d.course_gap_days + 1} days)."),
    ]
    if d.suppress_small_cells:
        sentences.append(("Small cells", f"Counts from 1 to {d.small_cell_max} print as "
                          f"\"{labels(d).marker}\" and rates built on them are withheld."))
    result = [{"definition": name, "text": text} for name, text in sentences]
    result += [{"definition": f"Instrument {name}", "text": instrument_sentence(config, name)}
               for name in config.instruments]
    return result


def methods_text(config: Config) -> str:
    """The methods section as plain text, one paragraph per definition."""
    return "\n\n".join(s["text"] for s in methods_sentences(config))
