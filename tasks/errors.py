"""longdoc's exceptions: a user error becomes one clear line at the CLI, not a traceback."""

from __future__ import annotations


class LongdocError(Exception):
    """Something the user can fix, said in one line."""


class ModelError(LongdocError):
    """A model that cannot be found, loaded, or used in the role asked of it."""


class ConfigError(LongdocError):
    """Parameters that do not fit together."""


class Cancelled(LongdocError):
    """The run was asked to stop (SIGTERM or SIGINT); work in progress was dropped, not written."""


def retry_cannot_help(exc: BaseException) -> bool:
    """Whether retrying the task that raised `exc` is futile: a user error (bad input, refused
    weights, a cancelled run), a storage path that cannot be used, or an environment error
    such as a full disk or a read-only data directory."""
    from storage.datasets import PERMANENT_ERRNOS, StorageError

    if isinstance(exc, LongdocError | StorageError):
        return True
    return isinstance(exc, OSError) and exc.errno in PERMANENT_ERRNOS
