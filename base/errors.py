"""The error a command raises for a user's mistake: printed as one line, exit status 2."""


class UserError(Exception):
    """Bad input from the person at the keyboard; nothing was changed."""
