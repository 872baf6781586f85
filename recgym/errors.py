"""Exceptions and warnings raised by recgym.

Every error recgym raises on purpose derives from :class:`RecgymError`, and also from the matching
built-in class (``ValueError``, ``FileNotFoundError``, ``OSError``), so callers can catch either.
Each message names what was wrong and how to fix it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class RecgymError(Exception):
    """Base class of all errors raised by recgym."""


class DataFormatError(RecgymError, ValueError):
    """A ratings or movies file (or archive) is malformed: bad columns, values or structure."""


class DatasetNotFoundError(RecgymError, FileNotFoundError):
    """A dataset is neither on disk nor downloadable (offline, or ``download=False``).

    Attributes:
        dataset: The dataset's name.
        looked: Every path that was searched.
        reason: Why nothing was downloaded (the network error, ``download=False``, ...).
    """

    def __init__(
        self,
        message: str,
        *,
        dataset: str = "",
        looked: Iterable[str] = (),
        reason: str = "",
    ) -> None:
        """Keep the message and the facts a caller may rephrase (see :meth:`cli_message`)."""
        super().__init__(message)
        self.dataset, self.looked, self.reason = dataset, list(looked), reason

    def __str__(self) -> str:
        """Return the message (not OSError's ``[Errno ...]`` form)."""
        return str(self.args[0]) if self.args else ""

    def cli_message(self) -> str:
        """The message for a user of the ``recgym`` command (options, not Python arguments)."""
        if not self.dataset:
            return str(self)
        looked = ", ".join(self.looked)
        return (
            f"{self.dataset} is not on disk (looked in {looked}) and {self.reason}. "
            f"Run `recgym data download {self.dataset}`, or download it yourself and pass "
            "--data-dir FOLDER (the folder holding it, unpacked or zipped), or set "
            "RECGYM_DATA_DIR."
        )


class UnknownDatasetError(RecgymError, ValueError):
    """A dataset name that recgym does not know."""


class DownloadError(RecgymError, OSError):
    """A download failed (network error, truncated transfer). No partial file is left behind."""


class ChecksumError(DownloadError):
    """A downloaded file does not match its published checksum. The file is deleted."""


class CacheError(RecgymError, OSError):
    """The cache directory cannot be created or written."""


class ConfigError(RecgymError, ValueError):
    """An invalid argument (environment, split, embedding, decoder or agent configuration)."""


class UnknownUserError(RecgymError, KeyError):
    """A user id that is not in the dataset (or not in the requested split)."""

    def __str__(self) -> str:  # KeyError quotes its message; show it plainly instead.
        """Return the message without KeyError's quoting."""
        return str(self.args[0]) if self.args else ""


class RecgymWarning(UserWarning):
    """Warnings about data quality or fallbacks (duplicates dropped, users skipped, ...)."""


def suggest(value: str, choices: Iterable[str]) -> str:
    """Return a ``" Did you mean 'x'?"`` hint for ``value`` among ``choices``, or ``""``.

    Args:
        value: The value the user gave.
        choices: The valid values.

    Returns:
        A sentence fragment starting with a space, or an empty string when nothing is close.

    Examples:
        >>> suggest("ml-100", ["ml-100k", "ml-1m"])
        " Did you mean 'ml-100k'?"
        >>> suggest("zzz", ["ml-100k"])
        ''
    """
    close = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """Validate that ``value`` is one of ``choices`` and return it.

    Args:
        name: The argument's name, used in the error message.
        value: The value given.
        choices: The allowed values.

    Returns:
        ``value`` unchanged.

    Raises:
        ConfigError: If ``value`` is not one of ``choices``; the message lists them.
    """
    choices = list(choices)
    if value not in choices:
        raise ConfigError(
            f"{name}={value!r} is not valid; expected one of {choices}."
            + (suggest(value, choices) if isinstance(value, str) else "")
        )
    return value  # type: ignore[return-value]


def check_int(name: str, value: object, low: int = 1, *, optional: bool = False) -> object:
    """Validate that ``value`` is an integer >= ``low`` (or ``None`` when ``optional``).

    Args:
        name: The argument's name, used in the error message.
        value: The value given.
        low: The smallest allowed value.
        optional: Whether ``None`` is allowed.

    Returns:
        ``value`` unchanged.

    Raises:
        ConfigError: Naming the argument, the value and the rule (booleans are refused).

    Examples:
        >>> check_int("frame_size", 10)
        10
        >>> check_int("patience", 0, optional=True)
        Traceback (most recent call last):
        ...
        recgym.errors.ConfigError: patience=0 must be None or an integer >= 1.
    """
    import numbers

    if value is None and optional:
        return value
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < low:
        rule = f"an integer >= {low}"
        raise ConfigError(f"{name}={value!r} must be {'None or ' if optional else ''}{rule}.")
    return value
