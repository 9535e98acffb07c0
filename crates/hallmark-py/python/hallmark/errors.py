"""hallmark's exceptions: one small hierarchy, with the CLI's messages and stable codes.

Every exception hallmark raises is a :class:`Error` whose ``code`` is one of the codes of
hallmark's JSON contract (``docs/json.md``): scripts branch on the code, people read the
message. Each also derives from the built-in exception a Python user would expect
(``ValueError`` for bad input, ``FileNotFoundError``, ``FileExistsError``), so generic
handlers keep working.
"""

from __future__ import annotations

__all__ = [
    "Error",
    "InputError",
    "ParameterError",
    "KeyMaterialError",
    "NotFoundError",
    "OutputExistsError",
    "from_code",
]


class Error(Exception):
    """Any hallmark failure. ``code`` says what kind (e.g. ``"invalid_input"``)."""

    code: str = "internal"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class InputError(Error, ValueError):
    """The input cannot be used: corrupt, truncated, empty, too large, too small, wrong
    shape or dtype, unsupported."""

    code = "invalid_input"


class ParameterError(Error, ValueError):
    """An argument is invalid (a malformed payload, an unknown format or scheme)."""

    code = "invalid_parameter"


class KeyMaterialError(Error):
    """A key, certificate or trust anchor is missing, malformed or does not match."""

    code = "key"


class NotFoundError(Error, FileNotFoundError):
    """A file (input, key, tokenizer, model) does not exist."""

    code = "not_found"


class OutputExistsError(Error, FileExistsError):
    """The output exists and replacing it was not asked for."""

    code = "output_exists"


_BY_CODE = {
    "invalid_input": InputError,
    "too_large": InputError,
    "too_small": InputError,
    "unsupported": InputError,
    "remote_manifest": InputError,
    "invalid_parameter": ParameterError,
    "key": KeyMaterialError,
    "not_found": NotFoundError,
    "output_exists": OutputExistsError,
}


def from_code(code: str, message: str) -> Error:
    """The exception for an error code (used by the native module)."""
    return _BY_CODE.get(code, Error)(message, code)
