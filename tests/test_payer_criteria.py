"""Payer criteria verdicts (pipeline/reports/payer/criteria.py) on hand-worked cases.

Infusion 1 of every case starts 2026-02-02 09:00 (the SPEC §2 worked example's course).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.reports.payer.criteria import (
    MET,
    NOT_DOCUMENTED,
    NOT_MET,
    ContinuationRule,
    DiagnosisRule,
    EntryRule,
    ResistanceRule,
    evaluate_continuation,
    evaluate_diagnosis,
    evaluate_entry,
    evaluate_resistance,
    payer_rules,
)

START = dt.datetime(2026, 2, 2, 9, 0)
RELIABLE = {"PHQ-9": 6.0, "MADRS": None}


def score(at: str, total: float, instrument: str = "PHQ-9", timing: str | None = "pre") -> dict:
    """A score dict as the context builds it; a date-only `post` is placed at the end of its day."""
    parsed = dt.datetime.fromisoformat(at)
    scored_at = parsed
    if len(at) == 10 and timing == "post":
        scored_at = parsed + dt.timedelta(days=1) - dt.timedelta(microseconds=1)
    return {"instrument": instrument, "scored_at": scored_at, "score_day": parsed.date(),
            "total_score": total, "timing": timing}


def trial(medication: str = "sertraline", start: str = "2025-06-01", end: str | None = "2025-08-01",
          adequate: bool | None = True, improvement: float | None = 10, episode: str | None = "current",
          drug_class: str | None = "SSRI") -> dict:
    return {"trial_id": None, "medication": medication, "drug_class": drug_class,
            "start_date": dt.date.fromisoformat(start),
            "end_date": dt.date.fromisoformat(end) if end else None,
            "adequate_dose": adequate, "improvement_pct": improvement, "episode": episode}


def outcome(baseline: float | None, endpoint: float | None, instrument: str = "PHQ-9",
            reliable: bool | None = None) -> dict:
    evaluable = baseline is not None and baseline > 0 and endpoint is not None
    reason = None if evaluable else ("no baseline" if baseline is None else "no follow-up score")
    pct = round((endpoint - baseline) / baseline * 100, 1) if evaluable else None
    return {"instrument": instrument, "baseline_score": baseline, "endpoint_score": endpoint,
            "pct_change": pct, "evaluable": evaluable, "not_evaluable_reason": reason,
            "reliable_improvement": reliable if evaluable else None,
            "baseline_at": dt.datetime(2026, 2, 2, 8, 30), "endpoint_at": dt.datetime(2026, 2, 27)}


# --- diagnosis ------------------------------------------------------------------------------


def test_recurrent_mdd_code_meets_diagnosis():
    assert evaluate_diagnosis("F33.1", DiagnosisRule())["verdict"] == MET


def test_anxiety_code_does_not_meet_diagnosis():
    assert evaluate_diagnosis("F41.1", DiagnosisRule())["verdict"] == NOT_MET


def test_missing_code_is_not_documented():
    assert evaluate_diagnosis(None, DiagnosisRule())["verdict"] == NOT_DOCUMENTED


# --- entry (baseline severity) --------------------------------------------------------------


def test_baseline_phq9_18_before_infusion_1_meets_entry():
    # 18 >= 15 at 08:30, before the 09:00 infusion.
    result = evaluate_entry([score("2026-02-02T08:30", 18)], START, EntryRule())
    assert result["verdict"] == MET
    assert "PHQ-9 18 on 2026-02-02 08:30 (≥ 15)" in result["evidence"]


def test_entry_uses_the_latest_score_not_the_highest():
    # 22 on 01-26, then 14 on 02-02 08:30: the latest (14) is the baseline; 14 < 15 -> not met.
    scores = [score("2026-01-26", 22), score("2026-02-02T08:30", 14)]
    result = evaluate_entry(scores, START, EntryRule())
    assert result["verdict"] == NOT_MET
    assert "PHQ-9 14 on 2026-02-02 08:30 (< 15)" in result["evidence"]


def test_any_listed_scale_suffices_for_entry():
    # PHQ-9 12 < 15, but MADRS 30 >= 28 -> met on MADRS.
    scores = [score("2026-02-01", 12), score("2026-02-01", 30, instrument="MADRS")]
    result = evaluate_entry(scores, START, EntryRule())
    assert result["verdict"] == MET
    assert "MADRS" in result["summary"]


def test_score_older_than_the_window_is_not_documented():
    # 2026-01-04 is 29 days before 02-02; window 28 -> nothing in the window.
    result = evaluate_entry([score("2026-01-04", 25)], START, EntryRule(window_days=28))
    assert result["verdict"] == NOT_DOCUMENTED


def test_score_exactly_window_days_before_counts():
    # 2026-01-05 is 28 days before 02-02: inside a 28-day window.
    assert evaluate_entry([score("2026-01-05", 25)], START, EntryRule())["verdict"] == MET


def test_date_only_post_score_on_day_1_is_not_baseline():
    # A date-only `post` score sits at the end of 02-02, after the 09:00 infusion: no baseline.
    result = evaluate_entry([score("2026-02-02", 20, timing="post")], START, EntryRule())
    assert result["verdict"] == NOT_DOCUMENTED


def test_ties_at_the_same_time_take_the_higher_score():
    # 14 and 16 at the same time -> 16 (SPEC tie rule) -> 16 >= 15 -> met.
    scores = [score("2026-02-02T08:30", 14), score("2026-02-02T08:30", 16)]
    assert evaluate_entry(scores, START, EntryRule())["verdict"] == MET


# --- treatment resistance -------------------------------------------------------------------


def test_no_trial_rows_is_not_documented():
    result, _ = evaluate_resistance([], START.date(), ResistanceRule())
    assert result["verdict"] == NOT_DOCUMENTED


def test_two_adequate_failed_trials_meet_resistance():
    # 2025-06-01 -> 08-01 = 61 days = 8.7 weeks >= 6; improvement 10% and 25% <= 25%.
    trials = [trial(), trial("venlafaxine", "2025-09-01", "2025-11-01", improvement=25)]
    result, classified = evaluate_resistance(trials, START.date(), ResistanceRule())
    assert result["verdict"] == MET
    assert [t["qualifies"] for t in classified] == ["counts", "counts"]
    assert any("venlafaxine" in line and "counts" in line for line in result["evidence"])


def test_one_failed_trial_and_one_responder_is_not_met():
    # The second trial improved 40% > 25%: only one qualifying trial, nothing incomplete.
    trials = [trial(), trial("venlafaxine", "2025-09-01", "2025-11-01", improvement=40)]
    result, _ = evaluate_resistance(trials, START.date(), ResistanceRule())
    assert result["verdict"] == NOT_MET


def test_trial_without_end_date_makes_the_verdict_not_documented():
    # One qualifying trial + one without an end date (duration unknown): could reach 2 -> not documented.
    trials = [trial(), trial("venlafaxine", "2025-09-01", None)]
    result, classified = evaluate_resistance(trials, START.date(), ResistanceRule())
    assert result["verdict"] == NOT_DOCUMENTED
    assert classified[1]["qualifies"] == "incomplete"
    assert "end date" in classified[1]["reason"]


def test_trial_of_41_days_is_too_short_and_42_days_is_enough():
    # 2025-06-01 + 41 days = 07-12 (5.9 weeks < 6); + 42 days = 07-13 (6.0 weeks).
    short = [trial(), trial("venlafaxine", "2025-06-01", "2025-07-12")]
    enough = [trial(), trial("venlafaxine", "2025-06-01", "2025-07-13")]
    assert evaluate_resistance(short, START.date(), ResistanceRule())[0]["verdict"] == NOT_MET
    assert evaluate_resistance(enough, START.date(), ResistanceRule())[0]["verdict"] == MET


def test_augmentation_prior_episode_inadequate_dose_and_later_trials_do_not_count():
    trials = [
        trial(),
        trial("aripiprazole", drug_class="augmentation"),
        trial("citalopram", episode="prior"),
        trial("mirtazapine", adequate=False),
        trial("bupropion", "2026-02-02", "2026-04-01"),  # starts on infusion day 1
    ]
    result, classified = evaluate_resistance(trials, START.date(), ResistanceRule())
    assert [t["qualifies"] for t in classified] == ["counts"] + ["excluded"] * 4
    assert result["verdict"] == NOT_MET


def test_config_can_lower_the_trial_count():
    result, _ = evaluate_resistance([trial()], START.date(), ResistanceRule(min_trials=1))
    assert result["verdict"] == MET


# --- continuation ---------------------------------------------------------------------------


def test_exactly_50_percent_reduction_meets_continuation():
    # 18 -> 9: 9 * 100 = 900 <= 18 * 50 = 900 -> a 50% reduction (no rounding involved).
    result = evaluate_continuation([outcome(18, 9, reliable=True)], ContinuationRule(), RELIABLE)
    assert result["verdict"] == MET
    assert "≥ 50% reduction: yes" in result["evidence"][0]


def test_reliable_improvement_alone_meets_continuation():
    # 18 -> 10: -44.4% (< 50%), but 18 - 10 = 8 >= 6 points -> reliable improvement -> met.
    result = evaluate_continuation([outcome(18, 10, reliable=True)], ContinuationRule(), RELIABLE)
    assert result["verdict"] == MET
    assert "change −44.4%" in result["evidence"][0]


def test_small_improvement_does_not_meet_continuation():
    # 10 -> 6: -40%, 4 points < 6 -> neither.
    result = evaluate_continuation([outcome(10, 6, reliable=False)], ContinuationRule(), RELIABLE)
    assert result["verdict"] == NOT_MET


def test_no_follow_up_score_is_not_documented():
    result = evaluate_continuation([outcome(18, None)], ContinuationRule(), RELIABLE)
    assert result["verdict"] == NOT_DOCUMENTED
    assert "no follow-up score" in result["evidence"][0]


def test_other_scales_do_not_count_unless_configured():
    # MADRS 30 -> 10 is a response, but the rule lists PHQ-9 only (absent here).
    rows = [outcome(30, 10, instrument="MADRS")]
    assert evaluate_continuation(rows, ContinuationRule(), RELIABLE)["verdict"] == NOT_DOCUMENTED
    configured = ContinuationRule(instruments=("PHQ-9", "MADRS"))
    assert evaluate_continuation(rows, configured, RELIABLE)["verdict"] == MET


# --- config ---------------------------------------------------------------------------------


def _config(tmp_path: Path, text: str):
    path = tmp_path / "payer.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_defaults_without_a_payer_section():
    rules = payer_rules(load_config(None))
    assert rules.entry.thresholds == {"PHQ-9": 15, "MADRS": 28, "HAM-D17": 17}
    assert (rules.resistance.min_trials, rules.resistance.min_weeks) == (2, 6)
    assert rules.continuation.min_reduction_pct == 50


def test_payer_section_overrides_defaults(tmp_path):
    rules = payer_rules(_config(tmp_path, """
[payer]
rule_set = "Acme Health TRD policy"
[payer.entry]
window_days = 14
thresholds = { "PHQ-9" = 16, "QIDS-SR16" = 16 }
[payer.resistance]
min_trials = 3
min_weeks = 8
[payer.continuation]
reliable_improvement = false
"""))
    assert rules.name == "Acme Health TRD policy"
    assert rules.entry == EntryRule(14, {"PHQ-9": 16, "QIDS-SR16": 16})
    assert (rules.resistance.min_trials, rules.resistance.min_weeks) == (3, 8)
    assert rules.continuation.reliable_improvement is False


def test_unknown_payer_key_names_file_and_key(tmp_path):
    config = _config(tmp_path, "[payer.resistance]\nmin_trails = 3\n")
    with pytest.raises(ConfigError, match=r"payer\.toml: \[payer\] resistance\.min_trails"):
        payer_rules(config)


def test_unknown_instrument_in_thresholds_is_an_error(tmp_path):
    # Instrument names are checked (loosely) with the rest of the config, when it is loaded.
    with pytest.raises(ConfigError, match='entry.thresholds: "PHQ9X" is not a known instrument'):
        _config(tmp_path, '[payer.entry]\nthresholds = { "PHQ9X" = 15 }\n')


def test_negative_window_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"entry\.window_days"):
        payer_rules(_config(tmp_path, "[payer.entry]\nwindow_days = -1\n"))
