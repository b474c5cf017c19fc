"""Published evidence: the curated study registry and the protocol -> study-family mapping."""
