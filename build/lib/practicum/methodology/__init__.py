"""The practical methodology: goal, history, summary (and, on top of them, diagnosis and report)."""
