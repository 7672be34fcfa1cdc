"""longdoc's exceptions: a user error becomes one clear line at the CLI, not a traceback."""


class LongdocError(Exception):
    """Something the user can fix, said in one line."""


class ModelError(LongdocError):
    """A model that cannot be found, loaded, or used in the role asked of it."""


class ConfigError(LongdocError):
    """Parameters that do not fit together."""
