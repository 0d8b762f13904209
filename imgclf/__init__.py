"""Library behind the DVC stages: data preparation, models, training, evaluation, reports."""
