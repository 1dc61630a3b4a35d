"""ONNX export and parity. Below the model phase, which exports every candidate to judge whether
it is deployable, and the deploy phase, which ships the chosen graph."""
