"""The bundle's own tests run from the bundle's folder: its modules sit one level up."""

import sys
from pathlib import Path

BUNDLE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BUNDLE))
