"""The base class of errors a user can fix, which CLIs print without a trace.

A leaf module: every layer may raise a :class:`UserError`, and
:mod:`dpt_mm.utils.cli` prints its message (and hint) instead of a
traceback.
"""
from typing import Optional

__all__ = ['InputError', 'UserError']


class UserError(Exception):
    """An error in what the user gave (a config, a path, a file).

    Subclasses mix it with the built-in class they always were
    (``class ConfigError(UserError, TypeError, ValueError)``), so existing
    ``except`` clauses still catch them.

    Attributes:
        hint (str, optional): What to do about it, printed by the CLIs
            after the message. A class may set a default.
    """

    hint: Optional[str] = None


class InputError(UserError, ValueError):
    """A value the user gave (a flag, a file's contents) that cannot work.

    A ValueError, which is what such checks raised before.
    """
