"""Errors that reach the user as one line, never as a traceback."""

from __future__ import annotations


class ParasearchError(Exception):
    """A problem with the user's input: printed as one line, exit code `exit_code`."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class SpecError(ParasearchError):
    """A bad problem or catalog file, located as `file:line: field: message`."""

    exit_code = 3

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.file, self.line, self.field = file, line, field

    def one_line(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        field = f"{self.field}: " if self.field else ""
        return f"{where}{field}{super().one_line()}"


class InfeasibleError(ParasearchError):
    """Nothing fits: the message says which constraint binds and by how much."""

    exit_code = 4
