"""mlwizard: from a table of data and a question to a served, monitored model.

The package root stays import-light: `mlwizard --help` and `import mlwizard.core` must not pull in
the TUI or the ML stack.
"""

__version__ = "0.1.0"
