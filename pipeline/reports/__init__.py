"""Reports: metrics -> context (plain dicts) -> template -> PDF + JSON/CSV."""
