"""The discovery phase: the task, the metric, the success criterion and the costs."""
