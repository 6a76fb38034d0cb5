"""Domain errors. Protocol adapters map each to their wire form (status code, body)."""


class StorageError(Exception):
    """Base of every domain error; the message is safe to show to the requesting user."""


class NotFound(StorageError):
    pass


class Forbidden(StorageError):
    pass


class AlreadyExists(StorageError):
    pass


class Conflict(StorageError):
    """The operation cannot be applied in the current state (e.g. a missing parent)."""


class PreconditionFailed(StorageError):
    pass


class Locked(StorageError):
    pass


class InvalidName(StorageError):
    pass


class InvalidArgument(StorageError):
    pass


class ChecksumMismatch(StorageError):
    pass


class QuotaExceeded(StorageError):
    pass


class Unauthenticated(StorageError):
    pass
