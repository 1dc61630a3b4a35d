"""The operations phase: reference statistics, drift, and the retraining advice."""
