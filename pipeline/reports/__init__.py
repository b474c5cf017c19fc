"""Reports: one `Results` -> context (plain dicts) -> template -> PDF + JSON/CSV, one folder each."""
