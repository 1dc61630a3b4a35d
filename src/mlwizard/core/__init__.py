"""The headless core: phases as plain functions over a project workspace.

Nothing under `mlwizard.core` imports textual, typer or rich; `tests/test_import_hygiene.py` holds
that line.
"""
