"""The one exception type for mistakes a user can fix (bad config values, missing data files).

The CLI prints its message as a single line and exits with code 2, without a traceback: a
researcher who mistyped a path needs the fix, not the stack.
"""


class ConfigError(ValueError):
    """A configuration or input problem, with a message that says what is wrong and how to fix it."""
