"""Errors a user can cause. The CLI prints their message (which names the file or field) and exits 2."""


class SagaError(Exception):
    """Base class for user-facing errors."""


class ConfigError(SagaError):
    """A model config violates the format or a dimension rule; `problems` lists every violation."""

    def __init__(self, problems, source=None):
        self.problems = list(problems) if not isinstance(problems, str) else [problems]
        self.source = source
        head = f"{source}: " if source else ""
        super().__init__(
            head
            + (
                "; ".join(self.problems)
                if len(self.problems) == 1
                else f"{len(self.problems)} problems:\n  - " + "\n  - ".join(self.problems)
            )
        )


class AudioError(SagaError):
    """An audio file is unreadable, empty, non-finite, silent or has an unsupported layout."""


class DataError(SagaError):
    """A data folder or manifest is missing, empty or malformed."""


class ModelLoadError(SagaError):
    """Weights or a text encoder cannot be found or do not fit the config."""


class OutputError(SagaError):
    """An output cannot be written as asked: it exists, it would replace an input, or its folder is not writable."""
