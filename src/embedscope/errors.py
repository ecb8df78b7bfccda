"""Errors a user can fix: each carries a one-line message saying what was wrong and what to do.

The CLI turns any `UserError` into that line on stderr and exit code 1; everything else is a bug.
"""


class UserError(Exception):
    """A problem with the user's input or request, explained in one line."""


class InputError(UserError):
    """An input file is missing, unreadable or not in the expected form."""


class VectorError(UserError):
    """Vectors or ids are invalid: NaN/inf values, wrong dimension, duplicate ids."""


class AtlasError(UserError):
    """A path is not an Atlas, the Atlas is damaged, or an operation conflicts with its content."""


class ParameterError(UserError):
    """A parameter or combination of parameters cannot be satisfied."""
