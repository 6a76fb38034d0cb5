"""Core errors -> WebDAV status and Sabre exception name, as oCIS answers them."""

from __future__ import annotations

from infiniscale.core.model import errors

STATUS: dict[type[errors.StorageError], tuple[int, str]] = {
    errors.NotFound: (404, "Sabre\\DAV\\Exception\\NotFound"),
    errors.Forbidden: (403, "Sabre\\DAV\\Exception\\Forbidden"),
    errors.AlreadyExists: (405, "Sabre\\DAV\\Exception\\MethodNotAllowed"),
    errors.Conflict: (409, "Sabre\\DAV\\Exception\\Conflict"),
    errors.PreconditionFailed: (412, "Sabre\\DAV\\Exception\\PreconditionFailed"),
    errors.Locked: (423, "Sabre\\DAV\\Exception\\Locked"),
    errors.InvalidName: (400, "Sabre\\DAV\\Exception\\BadRequest"),
    errors.InvalidArgument: (400, "Sabre\\DAV\\Exception\\BadRequest"),
    errors.ChecksumMismatch: (400, "Sabre\\DAV\\Exception\\BadRequest"),
    errors.QuotaExceeded: (507, "Sabre\\DAV\\Exception\\InsufficientStorage"),
    errors.Unauthenticated: (401, "Sabre\\DAV\\Exception\\NotAuthenticated"),
}


def status_of(exc: errors.StorageError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500, "Sabre\\DAV\\Exception"


class DavError(Exception):
    """An error decided by the protocol layer itself (bad header, unsupported feature)."""

    def __init__(self, status: int, message: str, exception: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.exception = exception or {
            400: "Sabre\\DAV\\Exception\\BadRequest",
            403: "Sabre\\DAV\\Exception\\Forbidden",
            404: "Sabre\\DAV\\Exception\\NotFound",
            405: "Sabre\\DAV\\Exception\\MethodNotAllowed",
            409: "Sabre\\DAV\\Exception\\Conflict",
            412: "Sabre\\DAV\\Exception\\PreconditionFailed",
            413: "Sabre\\DAV\\Exception\\RequestEntityTooLarge",
            415: "Sabre\\DAV\\Exception\\UnsupportedMediaType",
            416: "Sabre\\DAV\\Exception\\RequestedRangeNotSatisfiable",
            423: "Sabre\\DAV\\Exception\\Locked",
            501: "Sabre\\DAV\\Exception\\NotImplemented",
            502: "Sabre\\DAV\\Exception\\BadGateway",
        }.get(status, "Sabre\\DAV\\Exception")
