"""The deploy phase: the service bundle around the ONNX model, batch prediction, and a local
runner for the service that the CLI and the TUI share."""
