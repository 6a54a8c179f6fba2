"""The one exception the client raises for anything usersd refused or that
kept the request from reaching it."""
from typing import Any, Dict, Optional, Tuple


class UsersdError(Exception):
    """usersd answered with an error, or could not be reached.

    Attributes:
        status: the HTTP status code (400, 401, 403, 404, 409, 410, 429,
            503...), or 0 when no HTTP reply arrived (connection refused,
            timeout, broken connection).
        message: the API's sentence (its ``"error"`` field), meant for a
            person; for ``status == 0`` what went wrong on the way.
        fields: the API's ``"fields"`` (field name -> why), empty when the
            reply named none.
        retry_after: seconds from the ``Retry-After`` header (429, 503),
            or None.
    """

    def __init__(self, status: int, message: str, fields: Optional[Dict[str, str]] = None,
                 retry_after: Optional[float] = None) -> None:
        super().__init__(status, message, fields or {})
        self.status = status
        self.message = message
        self.fields: Dict[str, str] = dict(fields or {})
        self.retry_after = retry_after

    def __reduce__(self) -> Tuple[Any, ...]:
        return (type(self), (self.status, self.message, self.fields, self.retry_after))

    def __str__(self) -> str:
        text = "%d: %s" % (self.status, self.message) if self.status else self.message
        more = sorted((k, v) for k, v in self.fields.items() if v != self.message)
        if more:
            text += " (%s)" % ", ".join("%s: %s" % kv for kv in more)
        return text
