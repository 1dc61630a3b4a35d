"""The model phase: candidates trained in parallel under a time budget, tuned, ensembled,
evaluated, analysed and tracked."""
