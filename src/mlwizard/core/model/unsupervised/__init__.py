"""The model phase for clustering and anomaly detection (no target to learn from)."""
