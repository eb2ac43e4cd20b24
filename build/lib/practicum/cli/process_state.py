"""What a command changes in its process, put back when it ends (`restored`): `sys.argv`, the
environment (the thread variables among it), the working folder, Hydra's global state, the log
handlers Hydra installs, `logging.raiseExceptions`, torch's thread count and its deterministic
mode. With it, `practicum.cli.main` runs `train.py` many times in one process."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def exit_code(code: Any) -> int:
    """The status `sys.exit(code)` gives a process: None is 0, a message is 1."""
    if code is None:
        return 0
    return code if isinstance(code, int) else 1


def _loggers() -> dict[str, logging.Logger]:
    found = {"": logging.getLogger()}
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            found[name] = logger
    return found


def _logging_state() -> dict[str, tuple]:
    return {
        name: (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
        for name, logger in _loggers().items()
    }


def _restore_logging(saved: dict[str, tuple]) -> None:
    kept = {id(h) for state in saved.values() for h in state[1]}
    for name, logger in _loggers().items():
        for handler in list(logger.handlers):
            if id(handler) not in kept:  # installed by the run (Hydra's file handler): close it
                logger.removeHandler(handler)
                handler.close()
        if name in saved:
            level, handlers, propagate, disabled = saved[name]
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate, logger.disabled = propagate, disabled
        else:  # a logger the run created: as a new logger is
            logger.setLevel(logging.NOTSET)
            logger.propagate, logger.disabled = True, False


def _clear_hydra() -> None:
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.hydra_config import HydraConfig

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    HydraConfig.instance().cfg = None


def _torch_state() -> tuple | None:
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    return torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()


def _restore_torch(saved: tuple | None) -> None:
    torch = sys.modules.get("torch")
    if torch is None or saved is None:
        return
    threads, deterministic = saved
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    if torch.are_deterministic_algorithms_enabled() != deterministic:
        torch.use_deterministic_algorithms(deterministic)


@contextmanager
def restored(argv: list[str]) -> Iterator[None]:
    """Run the body with `sys.argv = argv`; afterwards the process is as it was before."""
    saved_argv = sys.argv[:]
    saved_env = dict(os.environ)
    saved_cwd = os.getcwd()
    saved_raise = logging.raiseExceptions
    saved_logging = _logging_state()
    saved_torch = _torch_state()
    sys.argv[:] = argv
    try:
        yield
    finally:
        sys.argv[:] = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        os.chdir(saved_cwd)
        logging.raiseExceptions = saved_raise
        _restore_logging(saved_logging)
        _clear_hydra()
        _restore_torch(saved_torch)
