"""Test helpers: data builders, project builders and fixtures (registered in `conftest.py`)."""
