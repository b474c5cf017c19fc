"""pipeline.methods: the methods text states each definition with the settings in force."""

from __future__ import annotations

from pipeline.config import Config, Definitions, load_config
from pipeline.methods import methods_sentences, methods_text


def test_methods_text_states_default_windows():
    text = methods_text(load_config(None))
    assert "dated no earlier than 14 calendar days before the day of infusion 1" in text
    assert "more than 30 calendar days pass between infusions" in text
    assert "response is a reduction of at least 50%" in text
    assert "PHQ-9: total 0–27; remission at an endpoint ≤ 4; caseness at ≥ 10; reliable " \
           "change of 6 points." in text


def test_methods_text_follows_config():
    config = Config(definitions=Definitions(baseline_window_days=7, response_pct=60,
                                            suppress_small_cells=True))
    sentences = {s["definition"]: s["text"] for s in methods_sentences(config)}
    assert "7 calendar days before the day of infusion 1" in sentences["Baseline"]
    assert "at least 60%" in sentences["Category"]
    assert "at most 40% of baseline" in sentences["Infusions to response"]
    assert '"<11"' in sentences["Small cells"]
    assert "no reliable-change threshold" in sentences["Instrument MADRS"]
