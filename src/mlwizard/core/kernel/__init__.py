"""The kernel every phase stands on: the phase context, workspace, config, errors, events,
atomic writes, hashing and recorded versions. It imports nothing else from mlwizard."""
