"""docs/definitions.md is the map from each definition to its one home: every methods sentence
the reports print is in it (with the default settings), and every file and function it names
exists, so the map cannot drift from the code."""

from __future__ import annotations

import dataclasses
import importlib
import re
from pathlib import Path

from pipeline.config import load_config
from pipeline.methods import labels, methods_sentences
from pipeline.paths import ROOT

DOC = ROOT / "docs" / "definitions.md"


def squash(text: str) -> str:
    return " ".join(text.split())


def test_every_methods_sentence_is_in_docs_definitions() -> None:
    config = load_config()
    config = dataclasses.replace(config, definitions=dataclasses.replace(
        config.definitions, suppress_small_cells=True))
    doc = squash(DOC.read_text(encoding="utf-8"))
    sentences = methods_sentences(config)
    assert len(sentences) > 20
    missing = [s["definition"] for s in sentences if squash(s["text"]) not in doc]
    assert missing == []


def test_every_file_and_function_the_map_names_exists() -> None:
    doc = DOC.read_text(encoding="utf-8")
    files = set(re.findall(r"`((?:sql|pipeline|docs)/[\w/.-]+\.(?:sql|py|md|csv))`", doc))
    assert {"sql/outcomes/06_baselines.sql", "pipeline/results.py"} <= files
    assert [f for f in files if not (ROOT / f).is_file()] == []
    named = re.findall(r"`(pipeline/[\w/]+)\.py` `(\w+)`", doc)
    assert len(named) > 15
    for path, name in named:
        module = importlib.import_module(path.replace("/", "."))
        assert hasattr(module, name), f"{path}.py has no {name}"


def test_every_outcome_and_metric_sql_file_is_on_the_map() -> None:
    doc = DOC.read_text(encoding="utf-8")
    for folder in ("outcomes", "metrics"):
        for sql_file in sorted(Path(ROOT / "sql" / folder).glob("*.sql")):
            assert f"sql/{folder}/{sql_file.name}" in doc


def test_labels_follow_the_configured_cut_offs() -> None:
    # response_pct 40: a response leaves at most 100 - 40 = 60% of the baseline; partial
    # responses run from 20% to 39% (the whole percents below 40)
    definitions = dataclasses.replace(load_config().definitions, response_pct=40,
                                      partial_response_pct=20, small_cell_max=5)
    printed = labels(definitions)
    assert (printed.response_pct, printed.partial_pct, printed.partial_top) == ("40", "20", "39")
    assert printed.response_bar == "60% of the baseline"
    assert (printed.marker, printed.fewer_than(), printed.small_range()) == (
        "<6", "fewer than 6", "1–5")
    default = labels(load_config().definitions)
    assert (default.response_bar, default.marker) == ("half the baseline", "<11")
