"""The one exception family a user can act on.

Anything that subclasses `UserError` is a problem in the user's data, files or config: the
console scripts print its message as one block on stderr and exit with code 2, without a
traceback (`HYDRA_FULL_ERROR=1` shows it). Every other exception is a bug and keeps its
traceback. Messages say what is wrong, where (file, manifest line or config key), and what to do.
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the user can fix: bad data, a missing file, an invalid or mismatched config."""


class ConfigError(UserError, ValueError):
    """A config value is invalid or does not fit the data or the model; names the config key."""
