"""One exception base for everything a user can fix.

The CLI catches :class:`HarmonizationError`, prints its message as one line on
stderr and exits non-zero. Anything else is a bug and keeps its traceback.
"""


class HarmonizationError(Exception):
    """Bad input, bad config or a refused operation, explained in one line."""


class InputError(HarmonizationError):
    """An input file (scan, mask, artifact, config) cannot be used; the message names it."""


class ConfigError(HarmonizationError):
    """A configuration value is invalid; the message names the field and what is allowed."""
