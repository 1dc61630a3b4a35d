"""The five phases. Each module exposes `run(context) -> PhaseResult`."""
