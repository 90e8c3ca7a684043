"""The one exception type for bad user input.

The CLI prints a `UserError` as a single line (`error: <message>`) and exits with status 2;
every other exception is a bug and keeps its traceback.

Example:
    >>> raise UserError("corpus.txt: file is empty; expected one document per line")
"""


class UserError(Exception):
    """Bad input from the user: a file, a field or a value that is not what was expected."""
