"""One job of a local-parallel sweep, in its own process:
`python -m hydra_plugins.practicum_launcher._worker JOB_FILE RESULT_FILE`.

Reads the pickled job, runs it through Hydra's `run_job` as any launcher does, and writes the
`JobReturn` to RESULT_FILE. A process killed before that leaves no RESULT_FILE: the launcher then
records the trial as lost. (Hydra's plugin scan skips modules whose name starts with `_`.)
"""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path


def main(job_file: str, result_file: str) -> None:
    job = pickle.loads(Path(job_file).read_bytes())
    sys.path[:] = job["sys_path"]
    # unpickling imports the task function's modules: after sys.path is the launcher's
    hydra_context, config, task_function, singletons = pickle.loads(job["shared"])

    import cloudpickle
    from hydra.core.singleton import Singleton
    from hydra.core.utils import run_job, setup_globals

    from hydra_plugins.practicum_launcher.lost_trials import job_config

    setup_globals()
    Singleton.set_state(singletons)
    sweep_config = job_config(hydra_context, config, job["overrides"], job["job_num"])
    result = run_job(
        hydra_context=hydra_context,
        config=sweep_config,
        task_function=task_function,
        job_dir_key="hydra.sweep.dir",
        job_subdir_key="hydra.sweep.subdir",
    )
    # written whole or not at all: a half-written result would be read as a result
    partial = Path(f"{result_file}.partial")
    partial.write_bytes(cloudpickle.dumps(result))
    os.replace(partial, result_file)


if __name__ == "__main__":
    main(*sys.argv[1:])
