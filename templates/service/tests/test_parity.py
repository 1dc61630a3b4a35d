"""Parity on the shipped sample rows: the predictor answers what the trained pipeline answered
(models/*/samples.json holds the pipeline's own outputs, written at deploy time)."""

import json
from pathlib import Path

import pytest
from predictor import Predictor

MODELS = Path(__file__).resolve().parents[1] / "models"
FOLDERS = sorted(p for p in MODELS.iterdir() if (p / "samples.json").is_file())


@pytest.mark.parametrize("folder", FOLDERS, ids=lambda p: p.name)
def test_samples_match_the_trained_pipeline(folder: Path) -> None:
    metadata = json.loads((folder / "metadata.json").read_text())
    samples = json.loads((folder / "samples.json").read_text())
    tolerance = metadata["parity"]["tolerance"]
    predictor = Predictor.from_folder(folder)
    served = predictor.predict_records(samples["rows"])
    assert len(served) == len(samples["expected"]) > 0
    classes = [str(c) for c in metadata.get("classes") or []]
    for got, expected in zip(served, samples["expected"], strict=True):
        if classes:
            assert got["prediction"] == expected["prediction"]
            for c, p in zip(classes, expected["proba"], strict=True):
                assert abs(float(got["proba"][c]) - p) <= tolerance
        else:
            assert abs(float(got["prediction"]) - expected["prediction"]) <= tolerance
