"""What the evidence template prints besides the context's figures: labels built from the
config (the suppression marker, the response and partial-response cut-offs), the benchmark and
funnel sentences of each family, and, per protocol, the pieces picked out of its section.

Built from the finished context and kept out of the JSON. The template formats these; it
computes nothing.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import Config
from pipeline.formatting import Suppressed
from pipeline.reports.evidence.benchmarks import PUBLISHED
from pipeline.reports.evidence.rates import evidence_labels
from pipeline.reports.evidence.texts import NOT_DEPRESSION

RESTRICTED_ROWS = 3  # response, remission, non-response: the rates restricted to caseness


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def span(low: float | None, high: float | None) -> str:
    """'45.0–60.1%' (one % sign)."""
    return f"{100 * (low or 0):.1f}–{pct(high)}"


def benchmark_sentence(family: dict[str, Any]) -> str:
    """p0 with its CI, τ², I², k and the prediction interval, or why there is no benchmark."""
    k = family["k"]
    if k == 0:
        return "No study of this family can be pooled: no benchmark."
    method = family["method_name"]
    if not family["single_benchmark"]:
        return (f"No single benchmark from the k = {k} pooled studies ({method}, τ² = "
                f"{family['tau2']:.3f}): {family['no_benchmark_reason']}. The clinic gets no "
                "above / within / below label.")
    ci = f"(95% CI {span(family['p0_ci_low'], family['p0_ci_high'])})"
    if k == 1:
        return (f"Benchmark p0 = {pct(family['p0'])} {ci} from one study: τ² and I² cannot "
                "be estimated and there is no prediction interval; the funnel limits are "
                "binomial only.")
    spread = f"τ² = {family['tau2']:.3f}, I² = {pct(family['i2'], 0)}"
    prediction = (f"95% prediction interval for a new cohort {span(family['pi_low'], family['pi_high'])}"
                  if family["pi_low"] is not None
                  else "no prediction interval (fewer than 3 studies)")
    return (f"Pooled p0 = {pct(family['p0'])} {ci} from k = {k} studies, {method} random "
            f"effects on the logit scale; {spread}; {prediction}.")


def limits_sentence(placement: dict[str, Any]) -> str | None:
    """'exact 95% limits 45.0–60.1%, 99.8% limits 40.2–65.0% at n = 218'."""
    if placement["limit95_low"] is None:
        return None
    return (f"exact 95% limits {span(placement['limit95_low'], placement['limit95_high'])}, "
            f"99.8% limits {span(placement['limit998_low'], placement['limit998_high'])} at "
            f"n = {placement['n']:,}")


def rate_text(rate: float | None, low: float | None, high: float | None,
              published: bool = False) -> dict[str, str]:
    """{'rate': '70.8%', 'interval': '(50.8–85.1)'}, with † for the paper's own CI; the
    interval is empty without one (the template keeps it on one line below the rate)."""
    if rate is None:
        return {"rate": "–", "interval": ""}
    if low is None or high is None:
        return {"rate": pct(rate), "interval": ""}
    return {"rate": pct(rate),
            "interval": f"({100 * low:.1f}–{100 * high:.1f}){' †' if published else ''}"}


def _study(study: dict[str, Any]) -> dict[str, dict[str, str]]:
    remission = study["remission_interval"] or {}
    return {"response": rate_text(study["rate"], study["ci_low"], study["ci_high"],
                                  study["ci_source"] == PUBLISHED),
            "remission": rate_text(study["remission_rate"], remission.get("low"),
                                   remission.get("high"), remission.get("source") == PUBLISHED)}


def _family(family: dict[str, Any]) -> dict[str, Any]:
    case = family["case"]
    return {"benchmark": benchmark_sentence(family), "limits": limits_sentence(family),
            "case_limits": limits_sentence(case) if case else None,
            "studies": {s["study_id"]: _study(s) for s in family["studies"]}}


def fewer(count: Any, than: Any) -> bool:
    """Whether a printed count is known to be below another printed count: both numbers, or a
    small-cell marker ("<11") against a number above its range; unknown otherwise."""
    if not isinstance(than, int):
        return False
    if isinstance(count, Suppressed):
        return than > count.small_cell_max
    return isinstance(count, int) and count < than


def _protocol(section: dict[str, Any]) -> dict[str, Any]:
    case_mix = section["case_mix"]
    first = section["families"][0] if section["families"] else None
    primary = section["rates"]["evaluable"] if section["rates"] else None
    return {
        # secondary instruments with fewer evaluable courses than the compared one (as printed)
        "fewer_scored": [o["instrument"] for o in section["other_instruments"]
                         if fewer(o["evaluable"], primary)],
        # "The GAD-7 measures anxiety, not depression." for each such secondary instrument
        "not_depression": [f"The {o['instrument']} measures {NOT_DEPRESSION[o['instrument']]}, "
                           "not depression." for o in section["other_instruments"]
                           if o["instrument"] in NOT_DEPRESSION],
        "restricted_rows": case_mix["restricted"]["rows"][:RESTRICTED_ROWS] if case_mix else [],
        "case_comparison": {"label": first["label"], "p0": first["p0"], **first["case"]}
        if first and first["case"] else None,
        "families": {f["key"]: _family(f) for f in section["families"]},
    }


def build_view(ctx: dict[str, Any], config: Config) -> dict[str, Any]:
    printed = evidence_labels(config)
    return {
        "marker": printed.marker,
        "fewer_than": printed.fewer_than(),
        "response_pct": printed.response_pct,
        "withheld_courses": f"withheld ({printed.fewer_than()} courses)",
        "non_response_note": (
            f"Non-response (<{printed.partial_pct}% improvement) leaves out partial responders "
            f"({printed.partial_pct}–{printed.partial_top}%), who also did not reach response"),
        "protocols": {s["protocol_id"]: _protocol(s) for s in ctx["protocols"]},
    }
