"""The suite's fixtures live in `tests/helpers/` and are registered here, once.

Levels: `unit/` (one module, no phase run), `phases/` (a phase or the runner on real files),
`shells/` (the CLI and the TUI), `e2e/` (the installed command, end to end).
"""

pytest_plugins = ["helpers.fixtures", "helpers.pg_server", "helpers.servers"]
