"""The data phase: ingest, profile, column types, the quality and leakage audit, the versioned
snapshot and the split."""
