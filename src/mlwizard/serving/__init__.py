"""The serving runtime: numpy and onnxruntime only. `predictor.py` is copied into every service
bundle and imported by batch prediction, so a row is prepared one way everywhere."""
