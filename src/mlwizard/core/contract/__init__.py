"""What crosses phases and reaches the service: the schema, the task and metric vocabulary, and
the feature frame every model is trained and scored on."""
