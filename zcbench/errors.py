"""Every error zcbench raises on bad input, in one place (core layer: imports nothing of zcbench).

Each one's ``str()`` is a single line that names the bad key, name or file, and — where
there is a fixed set — the valid choices. The command line prints it as
``zcbench: error: <message>`` and exits with status 2 (:func:`zcbench.config.fail`).

The classes keep the built-in bases they had when they lived in their old modules
(``ConfigError`` is a ``ValueError``, ``UnknownNameError`` a ``KeyError``, ...), so existing
``except`` clauses still catch them; the old import paths (``zcbench.runner.ConfigError``,
``zcbench.data.DataError``, ``zcbench.registry.UnknownNameError``,
``zcbench.report.ReportError``, ``zcbench.groundtruth.BuildError``) still work.
"""
from __future__ import annotations


class ZcbenchError(Exception):
    """Base class of zcbench's bad-input errors (catch this to catch them all)."""


class ConfigError(ZcbenchError, ValueError):
    """A malformed configuration value; str() is one line naming the key."""


class DataError(ZcbenchError, RuntimeError):
    """A missing or malformed data file; str() is one line naming the file."""


class UnknownNameError(ZcbenchError, KeyError):
    """A space or proxy name that is not registered; str() is a one-line message."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return self.args[0]


class ReportError(ZcbenchError, RuntimeError):
    """Nothing to report (empty results dir, filters matching nothing); str() is one line."""


class BuildError(ZcbenchError, ValueError):
    """A ground-truth build whose configuration or table does not match; str() is one line."""


#: The errors a job turns into a one-line message and exit status 2 (bad input, not a bug).
USER_ERRORS = (ConfigError, DataError, UnknownNameError, ReportError, BuildError)
