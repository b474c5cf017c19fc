"""The FHIR mapping (`fhir_mapping.toml`, README "FHIR"): codes, statuses, protocols, extensions.

Defaults cover US Core / LOINC scores and RxNorm ketamine; every table can be extended or
overridden under `[fhir]`. Unknown keys stop the load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.config import Config
from pipeline.errors import InputError
from pipeline.ingest.adapters.common import check_keys
from pipeline.ingest.adapters.fhir_resources import codings, extension_values, joined, primitive
from pipeline.instruments import normalize_key

# LOINC item codes in item order. PHQ-9 items 1-7 as verified in domain.md; 44253-3 (item 8),
# 44260-8 (item 9) and the GAD-7 item codes are from LOINC from memory: override under
# [fhir.item_codes] if a server uses others.
ITEM_CODES = {
    "PHQ-9": ("44250-9", "44255-8", "44259-0", "44254-1", "44251-7", "44258-2", "44252-5",
              "44253-3", "44260-8"),
    "GAD-7": ("69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"),
}
PANEL_CODES = {"44249-1": "PHQ-9", "69737-5": "GAD-7"}
LA_ANSWERS = {"LA6568-5": 0, "LA6569-3": 1, "LA6570-1": 2, "LA6571-9": 3}
ORDINAL_URLS = ("http://hl7.org/fhir/StructureDefinition/ordinalValue",
                "http://hl7.org/fhir/StructureDefinition/itemWeight")
SESSION_STATUS = {"completed": "completed", "stopped": "aborted", "not-done": "cancelled"}
SEX = {"female": "F", "male": "M", "other": "X", "unknown": None}
FHIR_KEYS = {
    "member_id_system", "medication_codes", "procedure_codes", "observation_statuses",
    "questionnaire_statuses", "status", "sex", "protocol_refs", "codes", "item_codes", "answers",
    "questionnaires", "extensions", "default_protocol", "protocol_codes",
}


class Mapping:
    def __init__(self, spec: dict[str, Any], path: Path | None, config: Config) -> None:
        check_keys(spec, {"fhir", "protocols"}, "the mapping", path)
        fhir = spec.get("fhir", {})
        check_keys(fhir, FHIR_KEYS, "[fhir]", path)
        self.path = path
        self.member_id_system = fhir.get("member_id_system")
        self.medication_codes = {str(c) for c in fhir.get("medication_codes", ["6130"])}
        self.procedure_codes = {str(c) for c in fhir.get("procedure_codes", ["96365"])}
        self.observation_statuses = set(fhir.get("observation_statuses",
                                                 ["final", "amended", "corrected"]))
        self.questionnaire_statuses = set(fhir.get("questionnaire_statuses",
                                                   ["completed", "amended"]))
        self.status = {**SESSION_STATUS, **fhir.get("status", {})}
        self.sex = {**SEX, **fhir.get("sex", {})}
        self.protocol_refs = {str(k): str(v) for k, v in fhir.get("protocol_refs", {}).items()}
        # Procedure / medication code ("system|code" or "code") -> protocol; such a code is a session
        self.protocol_codes = {str(k): str(v) for k, v in fhir.get("protocol_codes", {}).items()}
        default = fhir.get("default_protocol")
        if default is not None and (not isinstance(default, str) or not default.strip()):
            raise InputError(f"{path}: [fhir] default_protocol must be a protocol id in quotes")
        self.default_protocol = default.strip() if default else None
        self.extensions = {str(k): str(v) for k, v in fhir.get("extensions", {}).items()}
        self.answers = {**LA_ANSWERS, **fhir.get("answers", {})}
        self.registry = config.instruments
        known = {normalize_key(n): n for n in config.instruments}

        def instrument(name: Any, where: str) -> str:
            if normalize_key(str(name)) not in known:
                raise InputError(f"{path}: {where}: instrument {name!r} is not in the registry; "
                                 "add it under [instruments] in the config")
            return known[normalize_key(str(name))]

        self.totals = {i.loinc: i.name for i in config.instruments.values() if i.loinc}
        self.totals.update({str(k): instrument(v, "[fhir.codes]")
                            for k, v in fhir.get("codes", {}).items()})
        self.items: dict[str, tuple[str, int]] = {
            code: (name, n) for name, codes in ITEM_CODES.items()
            for n, code in enumerate(codes, start=1) if name in config.instruments
        }
        for code, value in fhir.get("item_codes", {}).items():
            if not (isinstance(value, list) and len(value) == 2):
                raise InputError(f"{path}: [fhir.item_codes] {code} must be [instrument, item number]")
            self.items[str(code)] = (instrument(value[0], "[fhir.item_codes]"), int(value[1]))
        self.questionnaires: dict[str, dict[str, Any]] = {}
        for url, q in fhir.get("questionnaires", {}).items():
            check_keys(q, {"instrument", "items", "total"}, f'[fhir.questionnaires."{url}"]', path)
            self.questionnaires[str(url)] = {
                "instrument": instrument(q.get("instrument"), f'[fhir.questionnaires."{url}"]'),
                "items": {str(link): n for n, link in enumerate(q.get("items", []), start=1)},
                "total": q.get("total"),
            }

    def lookup(self, table: dict[str, Any], keys: list[str]) -> Any:
        return next((table[k] for k in keys if k in table), None)

    def ext(self, resource: dict[str, Any], column: str) -> str | None:
        url = self.extensions.get(column)
        return joined(extension_values(resource, url)) if url else None

    def answer(self, holder: dict[str, Any]) -> Any:
        """An item's score from an answer/Observation value: LA code, ordinal extension, number."""
        for key in ("valueCoding", "valueCodeableConcept"):
            value = holder.get(key)
            for c in [value] if key == "valueCoding" else codings(value):
                if not isinstance(c, dict):
                    continue
                if c.get("code") in self.answers:
                    return self.answers[c["code"]]
                for e in c.get("extension") or []:
                    if isinstance(e, dict) and e.get("url") in ORDINAL_URLS:
                        return primitive(e)
        return primitive(holder)
