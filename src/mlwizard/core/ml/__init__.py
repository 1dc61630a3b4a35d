"""Model training and ONNX export for the model phase (and the deploy phase's parity check)."""
