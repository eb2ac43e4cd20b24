"""Hyperparameter search: sweep summaries, studies, search-space helpers."""
