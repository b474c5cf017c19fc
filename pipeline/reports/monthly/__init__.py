"""Monthly quality report: results -> context (plain dicts) -> template -> PDF + JSON."""
