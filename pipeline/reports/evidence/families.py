"""Protocol families (docs/definitions.md "Comparison with published evidence"): which published figures a
clinic protocol is compared with, and the `[evidence]` config section that can change that.

A family is a named set of registry rows with a comparable plan, instrument family and
timepoint. `pooled` rows form the benchmark p0 (docs/benchmarks.md); `context` rows are drawn on
the forest plot for orientation but never pooled. Only a row the registry marks poolable
(`benchmark = yes`, `pooling = poolable`) may be listed under `pooled`; Kaplan–Meier, meta-analytic,
pre-dose and secondary-source figures can only be context.

Defaults are in code; `[evidence]` in the TOML config may override them:

    [evidence]
    primary_instrument = "PHQ-9"            # the instrument compared with the studies (default:
                                            # PHQ-9, else the one with most evaluable courses)
    method = "paule_mandel"                 # tau^2 estimator: paule_mandel or dersimonian_laird
    registry = "my-registry.csv"            # another registry file (same columns)
    [evidence.protocols]                    # clinic protocol_id -> family keys (in order)
    IND6 = ["series_6_in_2wk", "real_world_induction"]
    MAINT = []                              # no comparison
    [evidence.families.my_family]           # add or replace a family
    label = "..."
    comparable = "..."
    pooled = ["study_id", ...]
    context = ["study_id", ...]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.config import Config, ConfigError
from pipeline.reports.evidence.pooling import ALIASES, METHOD_RE, PAULE_MANDEL
from pipeline.reports.evidence.registry import RegistryError, Study, load_registry

# The published studies' response: a reduction of at least half from baseline. A clinic whose
# `response_pct` differs is not compared with them (docs/benchmarks.md, "Same definitions").
PUBLISHED_RESPONSE_PCT = 50.0
PUBLISHED_PARTIAL_PCT = 25.0  # "non-response" in the claims: a reduction of less than a quarter


@dataclass(frozen=True)
class Family:
    key: str
    label: str
    comparable: str  # what makes these studies comparable: plan, instrument, timepoint
    pooled: tuple[str, ...]
    context: tuple[str, ...] = ()


DEFAULT_FAMILIES: dict[str, Family] = {
    f.key: f
    for f in (
        Family(
            "series_6_in_2wk", "Six infusions over about two weeks (academic series)",
            "6 infusions of 0.5 mg/kg over 12–14 days; response (MADRS at least halved) at the "
            "end of the series",
            pooled=("murrough2013_biolpsych", "phillips2019"),
        ),
        Family(
            "twice_weekly_3_4wk", "Twice weekly for three to four weeks",
            "6 infusions twice weekly over about 3 weeks; response (QIDS-SR-16 at least "
            "halved) at the end of the induction",
            pooled=("anand2023_elektd_qids",),
            context=("sakurai2020_mgh", "anand2023_elektd_madrs"),
        ),
        Family(
            "single_infusion", "Single infusion",
            "one infusion; response (MADRS/HDRS at least halved) 1–7 days after it; the latest "
            "figures (day 3, day 7) are the closest to the clinic's endpoint, the last score of "
            "the endpoint window",
            pooled=("salloum2019_fava_dose", "lii2023_masked", "mathew2010_72h"),
            context=("han2016_meta_d7", "han2016_meta_24h"),
        ),
        Family(
            "real_world_induction", "Real-world induction series (community clinics)",
            "4–8 infusions over 1–4 weeks in routine care; response (score at least halved, "
            "mostly PHQ-9) up to about a month after the induction",
            pooled=("mcinnes2022_kit", "juby2024_sa", "wilkinson2018_yale"),
            context=("oliver2022_6wk", "alnefeesi2022_rw_meta"),
        ),
    )
}

MATCH_RULE = (
    "Protocols are matched by their plan unless [evidence.protocols] names families: "
    "maintenance phase → no comparison; 1 planned infusion → single infusion; 4 or more "
    "infusions planned over up to 16 days → six over about two weeks and real-world induction; "
    "4 or more over 17–35 days → twice weekly for 3–4 weeks and real-world induction; "
    "anything else → no comparison."
)


def default_families_for(protocol: dict[str, Any]) -> list[str]:
    """Family keys for a protocol row (planned_infusions, planned_days, phase) by MATCH_RULE."""
    if (protocol.get("phase") or "").lower() == "maintenance":
        return []
    infusions = protocol.get("planned_infusions") or 0
    days = protocol.get("planned_days") or 0
    if infusions == 1:
        return ["single_infusion"]
    if infusions >= 4 and days <= 16:
        return ["series_6_in_2wk", "real_world_induction"]
    if infusions >= 4 and 17 <= days <= 35:
        return ["twice_weekly_3_4wk", "real_world_induction"]
    return []


@dataclass(frozen=True)
class EvidenceSettings:
    registry: dict[str, Study]
    registry_path: str
    families: dict[str, Family]
    protocol_families: dict[str, tuple[str, ...]]  # explicit overrides only
    primary_instrument: str | None  # None: PHQ-9, else the instrument with most evaluable courses
    method: str = PAULE_MANDEL  # the random-effects estimator of tau^2 (pooling.py)

    def families_for(self, protocol: dict[str, Any]) -> list[Family]:
        keys = self.protocol_families.get(protocol["protocol_id"])
        if keys is None:
            keys = tuple(default_families_for(protocol))
        return [self.families[k] for k in keys]


_KEYS = {"primary_instrument", "method", "registry", "protocols", "families"}
_FAMILY_KEYS = {"label", "comparable", "pooled", "context"}


def _string_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings, not {value!r}")
    return tuple(value)


def evidence_settings(config: Config) -> EvidenceSettings:
    """Validate `config.evidence` (the raw `[evidence]` table) against the registry.

    Raises ConfigError naming the config file and key, or the registry file, row and field.
    """
    source = config.source or "config"
    raw = config.evidence or {}
    for key in raw:
        if key not in _KEYS:
            raise ConfigError(f"{source}: [evidence] has unknown key '{key}'; known keys: "
                              f"{', '.join(sorted(_KEYS))}")
    primary = raw.get("primary_instrument")
    if primary is not None and (not isinstance(primary, str) or primary not in config.instruments):
        raise ConfigError(f"{source}: [evidence] primary_instrument must name a known instrument "
                          f"({', '.join(config.instruments)}), not {primary!r}")
    method = raw.get("method", PAULE_MANDEL)
    if not isinstance(method, str) or ALIASES.get(method, method) not in METHOD_RE:
        raise ConfigError(f"{source}: [evidence] method = {method!r}: must be \"paule_mandel\" "
                          "(the default) or \"dersimonian_laird\", the estimator of the "
                          "between-study variance (docs/benchmarks.md)")
    registry_value = raw.get("registry")
    if registry_value is not None and not isinstance(registry_value, str):
        raise ConfigError(f"{source}: [evidence] registry must be a file path, not {registry_value!r}")
    registry_path: Path | None = None
    if registry_value:
        registry_path = Path(registry_value)
        if not registry_path.is_absolute() and config.source:
            registry_path = Path(config.source).parent / registry_path
    try:
        registry = load_registry(registry_path)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from exc

    families = dict(DEFAULT_FAMILIES)
    raw_families = raw.get("families", {})
    if not isinstance(raw_families, dict):
        raise ConfigError(f"{source}: [evidence.families] must be a table")
    for key, spec in raw_families.items():
        where = f"{source}: [evidence.families.{key}]"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be a table")
        for name in spec:
            if name not in _FAMILY_KEYS:
                raise ConfigError(f"{where} has unknown key '{name}'; known keys: "
                                  f"{', '.join(sorted(_FAMILY_KEYS))}")
        base = families.get(key)
        pooled = _string_list(spec["pooled"], f"{where} pooled") if "pooled" in spec else (
            base.pooled if base else None)
        if pooled is None:
            raise ConfigError(f"{where} needs 'pooled' (the study_ids forming the benchmark)")
        label = spec.get("label", base.label if base else key)
        comparable = spec.get("comparable", base.comparable if base else "")
        if not isinstance(label, str) or not isinstance(comparable, str):
            raise ConfigError(f"{where} label and comparable must be strings")
        context = _string_list(spec["context"], f"{where} context") if "context" in spec else (
            base.context if base else ())
        families[key] = Family(key, label, comparable, pooled, context)
    for family in families.values():
        where = f"{source}: [evidence.families.{family.key}]"
        for sid in (*family.pooled, *family.context):
            if sid not in registry:
                raise ConfigError(f"{where}: study '{sid}' is not in the registry")
        for sid in family.context:
            if not registry[sid].has_identifier:
                # Every published figure the report prints must trace to a DOI or PMID.
                raise ConfigError(f"{where} context: study '{sid}' has no DOI or PMID in the "
                                  "registry, so the report cannot print its figures")
        for sid in family.pooled:
            study = registry[sid]
            if not study.benchmark:
                raise ConfigError(f"{where} pooled: study '{sid}' has benchmark = no (no DOI or "
                                  "PMID) and can only be listed under context")
            if study.response_rate is None:
                raise ConfigError(f"{where} pooled: study '{sid}' has no response rate")
            if not study.poolable:
                # decided by the registry's `pooling` column (docs/benchmarks.md), never by words
                raise ConfigError(f"{where} pooled: study '{sid}' cannot be pooled: "
                                  f"{study.not_pooled_reason} (registry pooling = "
                                  f"{study.pooling}); list it under context")

    raw_protocols = raw.get("protocols", {})
    if not isinstance(raw_protocols, dict):
        raise ConfigError(f"{source}: [evidence.protocols] must be a table")
    protocol_families: dict[str, tuple[str, ...]] = {}
    for protocol_id, keys in raw_protocols.items():
        where = f"{source}: [evidence.protocols] {protocol_id}"
        keys = _string_list(keys, where)
        for key in keys:
            if key not in families:
                raise ConfigError(f"{where}: unknown family '{key}'; known: {', '.join(families)}")
        protocol_families[protocol_id] = keys
    return EvidenceSettings(registry, str(registry_path or "built-in registry"), families,
                            protocol_families, primary, ALIASES.get(method, method))
