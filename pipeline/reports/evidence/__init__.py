"""Evidence comparison report: the registry of published studies and the protocol families
they are compared with (registry.py, registry.csv, families.py), the comparison arithmetic
(compare.py), results -> context (rates, cells, studies, claims, context) -> template -> PDF +
JSON (view, charts, write)."""
