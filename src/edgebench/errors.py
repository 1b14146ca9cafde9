"""Errors that carry a message meant for the user: what is wrong and how to fix it."""


class UserError(Exception):
    """Bad input or a missing prerequisite. The CLI prints the message as one line, exit status 2,
    before any model loads where the problem can be seen that early."""


class MissingDependency(UserError):
    """An optional package is needed for what was asked; the message names the install command."""

    def __init__(self, what: str, install: str, why: str = ""):
        detail = f" ({why})" if why else ""
        super().__init__(f"{what} is not available{detail}; install it with: {install}")
        self.what, self.install = what, install
