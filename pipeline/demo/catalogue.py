"""The fixed catalogue of the synthetic clinic: protocols, sites, providers, payers, codes."""

from __future__ import annotations

import numpy as np

IND6, TW4, SINGLE, MAINT = range(4)
PROTOCOL_IDS = ("IND6", "TW4", "SINGLE", "MAINT")

# The `protocols` file (README "Input"), optional columns included.
PROTOCOLS: dict[str, list] = {
    "protocol_id": list(PROTOCOL_IDS),
    "name": [
        "6 infusions over 12 days, 0.5 mg/kg over 40 min",
        "Twice weekly for 4 weeks",
        "Single infusion",
        "Maintenance every 3-4 weeks",
    ],
    "planned_infusions": [6, 8, 1, 6],
    "planned_days": [12, 28, 1, 168],
    "dose_mg_per_kg": [0.5, 0.5, 0.5, 0.5],
    "infusion_minutes": [40, 100, 40, 40],
    "phase": ["induction", "induction", "induction", "maintenance"],
    "indication": ["treatment-resistant depression"] * 4,
}
PLANNED = np.array(PROTOCOLS["planned_infusions"])
MINUTES = np.array(PROTOCOLS["infusion_minutes"])

# Which induction a new patient is booked on.
INDUCTION_P = (0.58, 0.25, 0.17)  # IND6, TW4, SINGLE
REPEAT_INDUCTION_P = (0.6, 0.4)  # IND6, TW4

SITES = ("Riverside", "Lakeview", "Summit")
SITE_P = (0.45, 0.35, 0.20)
PROVIDERS = (
    ("Dr Chen", "Dr Okafor", "NP Rivera"),
    ("Dr Haddad", "NP Kowalski"),
    ("Dr Mensah", "NP Lindqvist", "Dr Baptiste"),
)
PROVIDER_NAMES = tuple(name for site in PROVIDERS for name in site)
PROVIDER_FIRST = np.cumsum([0] + [len(site) for site in PROVIDERS])[:-1]
PROVIDER_COUNT = np.array([len(site) for site in PROVIDERS])

PAYERS = ("Aetna", "Blue Cross Blue Shield", "Cigna", "UnitedHealthcare", "Self-pay")
PAYER_P = (0.13, 0.17, 0.10, 0.13, 0.47)
MEMBER_PREFIX = ("W", "XGB", "U", "9", "")
SELF_PAY = len(PAYERS) - 1

DIAGNOSES = ("F33.2", "F33.1", "F32.2", "F32.9", "F33.9", "F32.1")
DIAGNOSIS_P = (0.30, 0.24, 0.20, 0.10, 0.10, 0.06)

AE_TYPES = ("nausea", "dissociation", "hypertension", "dizziness", "headache")

PHQ9, GAD7, MADRS = range(3)
INSTRUMENTS = ("PHQ-9", "GAD-7", "MADRS")
ITEM_COLUMNS = 9  # item_1..item_9: PHQ-9 uses all, GAD-7 the first 7, MADRS none (total only)

PRE, POST, FOLLOWUP = range(3)
TIMINGS = ("pre", "post", "followup")

COMPLETED, ABORTED, CANCELLED = range(3)
STATUSES = ("completed", "aborted", "cancelled")
