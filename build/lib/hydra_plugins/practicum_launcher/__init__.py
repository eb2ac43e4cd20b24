"""practicum's Hydra launchers. `hydra/launcher=local_parallel` (conf/hydra/launcher/) runs each
trial of a sweep in its own process; a trial whose process is lost is one failed trial
(lost_trials.py), and the sweep goes on.

Hydra finds launchers by scanning the `hydra_plugins` namespace package: this folder has no
`__init__.py` one level up, so it joins the `hydra_plugins` of the installed Hydra plugins.
"""
