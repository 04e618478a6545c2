"""One exception tree for the library; the CLI translates it into messages and exit codes."""


class LookalikeError(Exception):
    """Base of every error lookalike raises on purpose."""


class DecodeError(LookalikeError):
    """A file could not be turned into pixels."""


class IndexError_(LookalikeError):
    """The index cannot be opened, read or written."""


class IndexBusyError(IndexError_):
    """Another process holds the index for writing."""


class IndexNotFoundError(IndexError_):
    """No index exists where one was expected."""


class UnknownMethodError(LookalikeError):
    """A signature method name is not registered."""


class SourceError(LookalikeError):
    """A source (folder, file list) cannot be read."""


class EvaluationError(LookalikeError):
    """Calibration or evaluation cannot run: bad labels, unknown edit, nothing to measure."""


class ModelError(LookalikeError):
    """An embedding model cannot be found, fetched, verified or run."""


class BoundError(LookalikeError, ValueError):
    """A numeric input is outside the range that makes sense (a radius above the code's length,
    a negative count, ...); raised before any work starts."""
