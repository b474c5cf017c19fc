"""Sentences of the evidence report built from the config in force: the comparability caveats
and the report's own methods (benchmark, intervals, funnel limits, suppression). Every cut-off
they name (response, window, small-cell size, estimator) comes from the config or the settings,
never from a literal (docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

from pipeline.config import Config
from pipeline.methods import Labels
from pipeline.reports.evidence.cells import CLAIM_INFUSIONS, DURABILITY_DAYS
from pipeline.reports.evidence.families import EvidenceSettings
from pipeline.reports.evidence.pooling import I2_LIMIT, METHOD_NAMES
from pipeline.reports.evidence.rates import SMALL_CELL_FLOOR

STUDIES_RESPONSE = "a score at least halved"  # how the studies define response, in words
# instruments that do not measure depression (every study compared did), and what they measure
NOT_DEPRESSION = {"GAD-7": "anxiety", "PCL-5": "post-traumatic stress symptoms"}


def caveats(settings: EvidenceSettings, refs: dict[str, int], config: Config, labels: Labels,
            instrument: str, why_not: str | None) -> list[str]:
    """What limits every comparison, first the definitions."""
    reg = settings.registry
    primary_text = "the self-rated PHQ-9" if instrument == "PHQ-9" else f"the {instrument}"
    if instrument in NOT_DEPRESSION:
        primary_text += (f", which measures {NOT_DEPRESSION[instrument]}, not depression as "
                         "the studies did")
    rp = labels.response_pct
    if why_not is None:
        response = (f"Response (≥{rp}% reduction, {STUDIES_RESPONSE}) is defined the same way, "
                    "but scales are not interchangeable.")
    else:
        response = (f"The clinic's response (≥{rp}% reduction, as configured) is not the "
                    f"studies' ({STUDIES_RESPONSE}): no clinic rate is placed against a "
                    f"benchmark, and every comparison and claim verdict that rests on response "
                    f"reads \"{why_not}\".")
    out = [
        "Instruments differ: most trials rate the MADRS (clinician) or QIDS-SR-16; the clinic's "
        f"primary instrument is {primary_text}. {response}",
        "Timepoints differ: many trials rate 24 hours after an infusion, and response rated then "
        "runs higher than response rated later (e.g. before the next infusion); the clinic's "
        "endpoint is the last score up to "
        f"{config.definitions.endpoint_window_days} days after the last infusion.",
        "Completer analyses run higher than intention-to-treat: the clinic's evaluable-course rate "
        "is compared with the studies; its ITT rate is printed beside it.",
    ]
    lii = reg.get("lii2023_masked")
    if lii and lii.comparator_response_rate is not None and lii.study_id in refs:
        out.append(
            f"Part of any observed response is non-specific: in the fully masked trial "
            f"{lii.short_label} [{refs[lii.study_id]}] the {lii.comparator} arm's response was "
            f"{100 * lii.comparator_response_rate:.0f}% against {100 * (lii.response_rate or 0):.0f}%"
            " with ketamine. A clinic's uncontrolled response rate cannot separate drug effect from"
            " expectancy.")
    oliver = reg.get("oliver2022_10inf")
    if oliver and oliver.study_id in refs:
        out.append(
            f"Cumulative Kaplan–Meier figures such as {oliver.short_label} [{refs[oliver.study_id]}]"
            f" ({100 * (oliver.response_rate or 0):.0f}% response after 10 infusions) are not "
            "comparable with fixed-timepoint rates and are never pooled; nor are meta-analytic "
            "rates without the ketamine arm's n, nor scores taken before each dose.")
    out.append(
        "The funnel limits allow for sampling error and for the spread between the pooled "
        "studies (τ²), not for differences of population, scale and timepoint that no study "
        "measured: a position outside the 95% limits is a prompt to look, not proof of better or "
        "worse care.")
    return out


def evidence_methods(labels: Labels, config: Config, settings: EvidenceSettings
                     ) -> list[dict[str, Any]]:
    """The report's own methods rows (before the definitions every report shares)."""
    k, fewer, small = labels.small_cell_max, labels.fewer_than(), labels.small_range()
    method = METHOD_NAMES[settings.method]
    limit = f"{100 * I2_LIMIT:.0f}%"
    configured = config.definitions.small_cell_max
    floor = ("" if configured >= SMALL_CELL_FLOOR else
             f" (the config's small_cell_max = {configured} is raised to {SMALL_CELL_FLOOR} "
             "here: this report may leave the clinic and never suppresses less than the CMS "
             "rule)")
    return [
        {"definition": "Which studies are pooled", "text": "Only a registry row that is a "
         "responders / n proportion of one cohort with a DOI or PMID is pooled (the registry's "
         "pooling column, never words in a note). Kaplan–Meier cumulative estimates, "
         "meta-analytic rates without the ketamine arm's n, scores taken before each dose and "
         "second-hand figures are listed for context with their reason. Remission is not pooled: "
         "the studies' remission cut-offs differ from each other and from the clinic's."},
        {"definition": "Benchmark p0", "text": "Random-effects pooled response rate on the logit "
         f"scale (within-study variance 1/(n·p·(1 − p))), τ² by {method} (statsmodels "
         "combine_effects), τ² and I² floored at 0; p0 with its 95% Wald interval. For 3 or more "
         "studies, the 95% prediction interval for a new cohort: logit p0 ± t(k − 2, 0.975)·"
         "√(τ² + se²). One study: p0 is its rate, τ² unknown, no prediction interval; two: no "
         f"prediction interval. Where I² ≥ {limit} no single rate describes the studies: the "
         "report gives their range and no above / within / below label."},
        {"definition": "Published intervals", "text": "A study's printed interval is its "
         "published 95% CI where the registry holds one, else the 95% Wilson interval on its "
         "evaluable n; a figure with no binomial n (Kaplan–Meier, meta-analytic) has none."},
        {"definition": "Funnel limits", "text": "Exact binomial limits around p0 for the "
         "clinic's n: a count is within the 95% (99.8%) limits when its tail probability on each "
         "side is at least 0.025 (0.001); where τ² is estimated above 0, the count's distribution "
         "is widened for the spread between studies (binomial on a logit-normal rate with "
         "variance τ²). The funnel plot draws the same limits, interpolated between the last "
         "count within and the first outside. The clinic is labelled above, within or below the "
         "95% limits, with \"outside 99.8%\" when also beyond those."},
        {"definition": "Intention to treat", "text": "ITT rates divide by every course not in "
         "progress with a baseline above 0; a course without an endpoint counts as not responding "
         "(and, for ITT non-response, as non-response)."},
        {"definition": "Kaplan–Meier intervals", "text": "Cumulative response after "
         f"{CLAIM_INFUSIONS} infusions and durability at {DURABILITY_DAYS} days are Kaplan–Meier "
         "estimates with 95% Greenwood intervals on the log(−log) scale; they are withheld when "
         f"{fewer} courses contribute."},
        {"definition": "Small cells", "text": f"Always on in this report: counts from 1 to {k} "
         f"print as \"{labels.marker}\"{floor} and rates built on them are withheld, as are "
         f"rates whose complement is {small}. Complementary suppression: no count of {small} may "
         "be worked out from the printed ones either. Every printed rate counts as printing its "
         "numerator and denominator (its interval gives them away), and the relations among "
         "them are checked together: response + partial + non-response = evaluable courses; "
         "ITT = evaluable + courses without an endpoint; the caseness-restricted counts plus "
         "those below caseness = all; early + gradual + late = responders by infusions to "
         "response; a Kaplan–Meier estimate gives away the events and censored courses up to its "
         "time; completion within the planned days is part of completion. When a small count "
         "could be derived, a further rate is withheld (the smallest that closes the gap; its "
         "count prints as \"*\"), and "
         "this repeats until none can. Funnel limits are printed only for a printed n, and a "
         "clinic whose responders are withheld is placed only when every count its marker allows "
         "gets the same position."},
    ]
