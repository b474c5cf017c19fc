"""What the evidence template prints besides the context's figures: labels built from the
config (the suppression marker, the response and partial-response cut-offs) and, per protocol,
the pieces picked out of its section (the restricted rate rows, the first family's comparison).

Built from the finished context and kept out of the JSON. The template formats these; it
computes nothing.
"""

from __future__ import annotations

from typing import Any

from pipeline.config import Config
from pipeline.methods import labels
from pipeline.reports.evidence.rates import SEVERE_BASELINES

RESTRICTED_ROWS = 3  # response, remission, non-response: the rates restricted to caseness
FEWER_SCORED = "MADRS"  # a secondary instrument scored on fewer courses than the primary


def _protocol(section: dict[str, Any]) -> dict[str, Any]:
    case_mix = section["case_mix"]
    first = section["families"][0] if section["families"] else None
    return {
        "fewer_scored": any(o["instrument"] == FEWER_SCORED
                            for o in section["other_instruments"]),
        "severe": [{"limit": limit, "share": case_mix[f"share_{limit}"]}
                   for limit in SEVERE_BASELINES] if case_mix else [],
        "restricted_rows": case_mix["restricted"]["rows"][:RESTRICTED_ROWS] if case_mix else [],
        "case_comparison": {"label": first["label"], "p0": first["p0"],
                            "position": first["case_funnel"]["label"]}
        if first and first["case_funnel"] else None,
    }


def build_view(ctx: dict[str, Any], config: Config) -> dict[str, Any]:
    printed = labels(config.definitions)
    return {
        "marker": printed.marker,
        "fewer_than": printed.fewer_than(),
        "withheld_courses": f"withheld ({printed.fewer_than()} courses)",
        "fewer_scored": FEWER_SCORED,
        "non_response_note": (
            f"Non-response (<{printed.partial_pct}% improvement) leaves out partial responders "
            f"({printed.partial_pct}–{printed.partial_top}%), who also did not reach response"),
        "protocols": {s["protocol_id"]: _protocol(s) for s in ctx["protocols"]},
    }
