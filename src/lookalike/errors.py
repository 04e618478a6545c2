"""One exception tree for the library. Each class carries what the edges need: the CLI's exit
code (cli/common.py `_translate`) and the HTTP status (service/app.py `_status_of`), so the two
can never disagree. Every exception lookalike raises on purpose is defined here.

Exit codes: 2 the request's fault (usage), 4 could not run (index busy or unreadable).
"""

USAGE, CANNOT_RUN = 2, 4


class LookalikeError(Exception):
    """Base of every error lookalike raises on purpose: by default the request's fault."""

    exit_code = USAGE
    http_status = 400


class DecodeError(LookalikeError):
    """A file could not be turned into pixels."""

    http_status = 422


class IndexError_(LookalikeError):
    """The index cannot be opened, read or written."""

    exit_code = CANNOT_RUN
    http_status = 503  # the server's side


class IndexBusyError(IndexError_):
    """Another process holds the index for writing."""

    http_status = 409  # try again later


class IndexNotFoundError(IndexError_):
    """No index exists where one was expected."""

    exit_code = USAGE  # the command pointed at nothing; a server without one is unavailable


class UnknownMethodError(LookalikeError):
    """A signature method name is not registered."""


class SourceError(LookalikeError):
    """A source (folder, file list) cannot be read."""


class EvaluationError(LookalikeError):
    """Calibration or evaluation cannot run: bad labels, unknown edit, nothing to measure."""


class ModelError(LookalikeError):
    """An embedding model cannot be found, fetched, verified or run."""


class ConfigError(LookalikeError):
    """The configuration file (lookalike.toml) cannot be found, read, or holds a key or value
    lookalike does not take."""

    http_status = 500  # a server's own settings, not the request, are wrong


class BoundError(LookalikeError, ValueError):
    """A numeric input is outside the range that makes sense (a radius above the code's length,
    a negative count, ...); raised before any work starts."""

    http_status = 422


# --- actions: plan, apply, undo ---------------------------------------------------------------

class PlanError(LookalikeError):
    """A plan cannot be made, read or is not valid."""


class ApplyError(LookalikeError):
    """A plan cannot be applied at all (its quarantine folder cannot be made, ...)."""


class UndoError(LookalikeError):
    """No run to undo, or its journal cannot be read."""


class RunnerError(LookalikeError):
    """The cluster that should do the work cannot: nobody answers at its address, it cannot
    be started, or a shard still fails after its retries."""

    exit_code = CANNOT_RUN
    http_status = 503


class QuarantineBusyError(LookalikeError):
    """Another apply or undo is working on this quarantine folder."""

    exit_code = CANNOT_RUN
    http_status = 409


# --- training ---------------------------------------------------------------------------------

class TrainingError(LookalikeError):
    """Training cannot start or go on (bad settings, unusable checkpoint)."""


class UnknownObjectiveError(LookalikeError):
    """An objective name that `build_objective` does not know."""


class TrainingDataError(LookalikeError):
    """No usable training pictures."""


# --- the HTTP service ---------------------------------------------------------------------------

class ServeConfigError(LookalikeError):
    """The service cannot start as asked (a non-loopback address without a token, ...)."""


class Refused(LookalikeError):
    """A request the service will not serve, with its own HTTP status."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = self.http_status = status
        self.reason = reason
