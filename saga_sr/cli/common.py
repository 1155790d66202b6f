"""Helpers shared by several subcommands (so no command imports another command's module)."""

from __future__ import annotations

import contextlib
import logging
import warnings


@contextlib.contextmanager
def quiet_lightning():
    """Hide Lightning's banners, model summaries and library warnings (the demo and the ladder print their own
    progress lines); the logger level is restored afterwards."""
    import lightning.pytorch  # noqa: F401  (its import sets the logger to INFO: import first, then quieten)

    logger = logging.getLogger("lightning.pytorch")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
