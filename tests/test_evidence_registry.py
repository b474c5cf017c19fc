"""The evidence registry (pipeline/reports/evidence/registry.csv) and the [evidence] config section."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from pipeline.config import ConfigError, load_config
from pipeline.reports.evidence.families import DEFAULT_FAMILIES, default_families_for, evidence_settings
from pipeline.reports.evidence.registry import (
    COLUMNS,
    EXCLUDED_SOURCE_ROWS,
    REGISTRY_PATH,
    RegistryError,
    load_registry,
)

SOURCE = Path("/work/shared/evidence/evidence.csv")


def registry_rows() -> list[dict[str, str]]:
    with REGISTRY_PATH.open(encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_registry(tmp_path: Path, rows: list[dict[str, str]], columns=COLUMNS) -> Path:
    path = tmp_path / "registry.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def with_change(tmp_path: Path, study_id: str, **changes: str) -> Path:
    rows = registry_rows()
    for row in rows:
        if row["study_id"] == study_id:
            row.update(changes)
    return write_registry(tmp_path, rows)


# ---------------------------------------------------------------------------------------------
# The shipped registry


def test_registry_loads_25_rows_and_every_benchmark_row_has_a_doi_or_pmid():
    studies = load_registry()
    assert len(studies) == 25
    for study in studies.values():
        assert 0 < study.n
        if study.benchmark:
            assert study.doi or study.pmid, study.study_id
        for rate in (study.response_rate, study.remission_rate):
            assert rate is None or 0 <= rate <= 1
        if study.responders is not None:
            assert study.responders <= study.n


def test_every_default_family_pools_only_benchmark_rows():
    studies = load_registry()
    for family in DEFAULT_FAMILIES.values():
        for sid in family.pooled:
            assert studies[sid].benchmark and studies[sid].has_identifier
        for sid in family.context:
            assert sid in studies


@pytest.mark.skipif(not SOURCE.is_file(), reason="shared evidence file not present")
def test_every_registry_row_traces_to_the_evidence_file_with_identical_n_and_rates():
    with SOURCE.open(encoding="utf-8") as handle:
        source = {row["study_id"]: row for row in csv.DictReader(handle)}
    for study in load_registry().values():
        row = source[study.study_id]
        assert "UNVERIFIED" not in (row["verified_quote"] + row["design"]).upper()
        # n: the leading number of the source's n text (e.g. "195 received ketamine")
        assert study.n == int(re.match(r"\s*(\d+)", row["n"]).group(1)), study.study_id

        def number(text: str) -> float | None:
            return float(text) if text.strip() else None

        assert study.response_rate == number(row["response_rate"]), study.study_id
        assert study.remission_rate == number(row["remission_rate"]), study.study_id
        assert study.responders == (int(row["responders"]) if row["responders"] else None)
        assert study.year == int(row["year"])
        assert study.journal == row["journal"], study.study_id
        # the source's pooling note, verbatim; an evaluable n or a published CI comes from it
        if row["pooling_note"]:
            assert study.pooling_note == row["pooling_note"], study.study_id
        if study.n_response is not None:
            assert re.search(rf"(n=|/){study.n_response}\b", row["pooling_note"]), study.study_id
        for ci in (study.response_ci, study.remission_ci):
            if ci is not None:
                assert f"{100 * ci[0]:g}-{100 * ci[1]:g}%" in row["pooling_note"], study.study_id
        if study.doi:
            assert study.doi in row["doi_or_pmid"]
        if study.pmid:
            assert f"PMID {study.pmid}" in row["doi_or_pmid"]
        if study.doi is None and study.pmid is None:
            assert "doi 10." not in row["doi_or_pmid"] and "PMID" not in row["doi_or_pmid"]
        # Extra facts come from the same source row (design text or quote), never from memory.
        text = row["design"] + " " + row["verified_quote"]
        if study.comparator_response_rate is not None:
            pct = f"{100 * study.comparator_response_rate:g}"
            assert f"{pct}%" in text or f"{study.comparator_response_rate}" in text, study.study_id
        if study.median_days_to_relapse is not None:
            assert f"{study.median_days_to_relapse:g} days" in text


@pytest.mark.skipif(not SOURCE.is_file(), reason="shared evidence file not present")
def test_every_source_row_is_in_the_registry_or_excluded_with_a_reason():
    with SOURCE.open(encoding="utf-8") as handle:
        source = [row for row in csv.DictReader(handle)]
    registry = load_registry()
    for row in source:
        assert (row["study_id"] in registry) != (row["study_id"] in EXCLUDED_SOURCE_ROWS)
        marked = "UNVERIFIED" in (row["verified_quote"] + row["design"]).upper()
        if marked:
            assert row["study_id"] in EXCLUDED_SOURCE_ROWS


# ---------------------------------------------------------------------------------------------
# Validation errors name the row and field


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"response_rate": "53.6"}, "response_rate", "between 0 and 1"),
        ({"n": "0"}, "n", "at least 1"),
        ({"n": "537 patients"}, "n", "whole number"),
        ({"responders": "600"}, "responders", "must not exceed n"),
        ({"authors": ""}, "authors", "required"),
        ({"journal": "not retrieved"}, "journal", "placeholder"),
        ({"doi": "", "pmid": ""}, "doi", "benchmark"),
        ({"doi": "doi 10.1016/j.jad.2021.12.097"}, "doi", "10.xxxx"),
        ({"pmid": "PMID 35027209"}, "pmid", "digits"),
        ({"design": "open-label; RATES UNVERIFIED"}, "design", "UNVERIFIED"),
        ({"design_class": "cohort"}, "design_class", "must be one of"),
        ({"benchmark": "maybe"}, "benchmark", "yes or no"),
        ({"response_rate": "", "remission_rate": ""}, "response_rate", "required"),
        ({"pooling": "maybe"}, "pooling", "must be one of"),
        ({"pooling": "kaplan_meier"}, "pooling_note", "required"),
        ({"response_ci_low": "0.5"}, "response_ci_high", "required"),
        ({"response_ci_low": "0.55", "response_ci_high": "0.6"}, "response_ci_low", "must hold"),
        ({"n_response": "600"}, "n_response", "must not exceed"),
        # 53.6% of 100 is no whole count (53/100, 54/100): the rate is not responders / 100
        ({"n_response": "100"}, "response_rate", "not a whole number of responders"),
        ({"pooling": "meta_analytic", "pooling_note": "x", "n_response": "500"}, "n_response",
         "only to a responders / n proportion"),
    ],
)
def test_bad_registry_row_names_the_row_and_field(tmp_path, changes, field, words):
    # mcinnes2022_kit is the 19th data row -> CSV line 20 (header is line 1)
    path = with_change(tmp_path, "mcinnes2022_kit", **changes)
    with pytest.raises(RegistryError) as error:
        load_registry(path)
    message = str(error.value)
    assert "row 20" in message and "study_id=mcinnes2022_kit" in message
    assert f"field '{field}'" in message and words in message


def test_duplicate_study_id_and_unknown_column_are_errors(tmp_path):
    rows = registry_rows()
    path = write_registry(tmp_path, rows + [rows[0]])
    with pytest.raises(RegistryError, match="duplicate"):
        load_registry(path)
    path = write_registry(tmp_path, [{**r, "extra": "x"} for r in rows], [*COLUMNS, "extra"])
    with pytest.raises(RegistryError, match="unknown column"):
        load_registry(path)


def test_context_only_row_may_lack_doi(tmp_path):
    path = with_change(tmp_path, "mcinnes2022_kit", doi="", pmid="", benchmark="no")
    assert load_registry(path)["mcinnes2022_kit"].has_identifier is False


# ---------------------------------------------------------------------------------------------
# [evidence] config


def config_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "outcomes.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_unknown_evidence_key_names_file_and_key(tmp_path):
    path = config_file(tmp_path, "[evidence]\nprimary_instrumnet = 'PHQ-9'\n")
    with pytest.raises(ConfigError) as error:
        evidence_settings(load_config(path))
    assert str(path) in str(error.value) and "primary_instrumnet" in str(error.value)


def test_pooling_a_row_without_doi_is_a_config_error(tmp_path):
    path = config_file(tmp_path, "[evidence.families.series_6_in_2wk]\n"
                                 "pooled = ['murrough2013_biolpsych', 'shiroma2014_jad_end']\n")
    with pytest.raises(ConfigError, match="shiroma2014_jad_end.*benchmark = no"):
        evidence_settings(load_config(path))


def test_unknown_family_and_unknown_study_are_config_errors(tmp_path):
    path = config_file(tmp_path, "[evidence.protocols]\nIND6 = ['six_weeks']\n")
    with pytest.raises(ConfigError, match="IND6.*unknown family 'six_weeks'"):
        evidence_settings(load_config(path))
    path = config_file(tmp_path, "[evidence.families.mine]\npooled = ['nobody2020']\n")
    with pytest.raises(ConfigError, match="nobody2020.*not in the registry"):
        evidence_settings(load_config(path))


def test_config_overrides_protocol_mapping_and_registry_errors_surface_as_config_errors(tmp_path):
    path = config_file(tmp_path, "[evidence.protocols]\nIND6 = ['real_world_induction']\n"
                                 "TW4 = []\n")
    settings = evidence_settings(load_config(path))
    assert [f.key for f in settings.families_for({"protocol_id": "IND6"})] == [
        "real_world_induction"]
    assert settings.families_for({"protocol_id": "TW4", "planned_infusions": 8,
                                  "planned_days": 28}) == []
    bad = with_change(tmp_path, "phillips2019", n="-3")
    path = config_file(tmp_path, f"[evidence]\nregistry = '{bad}'\n")
    with pytest.raises(ConfigError, match="phillips2019.*field 'n'"):
        evidence_settings(load_config(path))


def test_default_matching_by_plan():
    assert default_families_for({"planned_infusions": 6, "planned_days": 12}) == [
        "series_6_in_2wk", "real_world_induction"]
    assert default_families_for({"planned_infusions": 8, "planned_days": 28}) == [
        "twice_weekly_3_4wk", "real_world_induction"]
    assert default_families_for({"planned_infusions": 1, "planned_days": 1}) == ["single_infusion"]
    assert default_families_for({"planned_infusions": 6, "planned_days": 168,
                                 "phase": "maintenance"}) == []


@pytest.mark.parametrize(
    ("table", "words"),
    [
        # pooling is decided by the registry's `pooling` column
        ("[evidence.families.real_world_induction]\npooled = ['mcinnes2022_kit', 'oliver2022_6wk']",
         "oliver2022_6wk' cannot be pooled: Kaplan–Meier cumulative estimate"),
        ("[evidence.families.single_infusion]\npooled = ['han2016_meta_d7']",
         "han2016_meta_d7' cannot be pooled: meta-analytic pooled rate"),
        # McIntyre 2020's DOI/PMID was not retrieved: not even printable as context
        ("[evidence.families.real_world_induction]\ncontext = ['mcintyre2020_crtce']",
         "mcintyre2020_crtce.*no DOI or PMID"),
    ],
)
def test_family_that_misuses_a_registry_row_is_refused(tmp_path, table, words):
    with pytest.raises(ConfigError, match=words):
        evidence_settings(load_config(config_file(tmp_path, table + "\n")))


# ---------------------------------------------------------------------------------------------
# Pooling and denominators decided by data


# Read from the evidence file's pooling notes and its evidence.md (sections 1, 3, 4): every row
# that is not a responders / n proportion of one cohort measured at the end of a series.
NOT_POOLABLE = {
    "han2016_meta_24h": "meta_analytic", "han2016_meta_72h": "meta_analytic",
    "han2016_meta_d7": "meta_analytic", "cochrane2021_vs_midazolam": "meta_analytic",
    "cochrane2021_vs_placebo": "meta_analytic", "alnefeesi2022_rw_meta": "meta_analytic",
    "oliver2022_6wk": "kaplan_meier", "oliver2022_10inf": "kaplan_meier",
    "sakurai2020_mgh": "pre_dose", "anand2023_elektd_madrs": "secondary_source",
    "griffiths2019_uk_bdi": "denominator_unknown", "griffiths2019_uk_qids": "denominator_unknown",
}


def test_pooling_column_marks_every_non_proportion_row():
    studies = load_registry()
    for study in studies.values():
        assert study.pooling == NOT_POOLABLE.get(study.study_id, "poolable"), study.study_id
        if study.pooling != "poolable":
            assert study.pooling_note and not study.poolable
    # Han 2016's 368 counts both arms of nine RCTs: it has no binomial n to weight by
    assert studies["han2016_meta_d7"].n == 368 and studies["han2016_meta_d7"].binomial_n is None
    assert "both arms" in studies["han2016_meta_d7"].n_note
    # evaluable denominators: Salloum 27 of 56 (48%), Juby 40 of 66 (60.6%)
    assert studies["salloum2019_fava_dose"].binomial_n == 56
    assert studies["juby2024_sa"].binomial_n == 66
    mathew = studies["mathew2010_72h"]
    assert (mathew.doi, mathew.pmid, mathew.benchmark) == ("10.1017/S1461145709000169",
                                                           "19288975", True)


def rows_with(study_id: str, **changes: str) -> list[dict[str, str]]:
    rows = registry_rows()
    for row in rows:
        if row["study_id"] == study_id:
            row.update(changes)
    return rows


def test_counts_that_disagree_with_the_printed_rate_are_refused_naming_the_study(tmp_path):
    # Salloum: 27 / 60 = 45.0%, but the abstract prints 48% (27 / 56 = 48.2%)
    path = write_registry(tmp_path, rows_with("salloum2019_fava_dose", n_response=""))
    with pytest.raises(RegistryError) as error:
        load_registry(path)
    message = str(error.value)
    assert "study_id=salloum2019_fava_dose" in message and "27 / 60 = 45.0%" in message
    assert "field 'responders'" in message
    # Juby: 60.6% is k/66 (40), not k/67 for any k (40/67 = 59.7%, 41/67 = 61.2%)
    path = write_registry(tmp_path, rows_with("juby2024_sa", n_response=""))
    with pytest.raises(RegistryError, match="juby2024_sa.*'response_rate' 0.606 is not a whole"):
        load_registry(path)
    # Sakurai 15 / 82 = 18.29%: 16 would be 19.5%
    path = write_registry(tmp_path, rows_with("sakurai2020_mgh", responders="16"))
    with pytest.raises(RegistryError, match="sakurai2020_mgh.*16 / 82 = 19.5%"):
        load_registry(path)


def test_printed_rates_allow_rounding_or_truncation_only():
    from pipeline.reports.evidence.registry import count_fits, some_count_fits
    assert count_fits(11, 12, "0.916")  # 91.67% printed truncated as 91.6% (Shiroma 2014)
    assert count_fits(17, 26, "0.65")  # 65.38% rounded to 65%
    assert count_fits(10, 20, "0.5")  # 0.5 is read as 50%
    assert not count_fits(27, 60, "0.48")  # 45%
    assert not count_fits(12, 26, "0.48")  # 46.2%
    assert some_count_fits(66, "0.606") and not some_count_fits(67, "0.606")
