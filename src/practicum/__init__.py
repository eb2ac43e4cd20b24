"""practicum: the practical methodology of training deep models, as a Lightning + Hydra template.

Importing the package is cheap; torch and Lightning load only when a run starts.
"""

__version__ = "0.1.0"
