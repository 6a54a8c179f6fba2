"""UserManagementService: every call of the usersd HTTP API as a method.

The names of the seed's "Backend Integration" (``set_user_online_status``,
``get_user_online_status``, ``get_online_users``) are kept; every method
returns the API's JSON object as a dict (None for the API's 204 replies)
and raises :class:`usersd.UsersdError` for anything else.
"""
import datetime
import http.client
import json
import threading
import time
import urllib.parse
import weakref
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple, Union

from ._version import __version__
from .errors import UsersdError
from .stream import EventStream

JSON = Dict[str, Any]
#: A moment for the API: an aware datetime (a naive one is taken as UTC) or
#: an RFC 3339 string passed as it is.
Moment = Union[datetime.datetime, str]

USER_AGENT = "usersd-python/" + __version__
# usersd closes idle keep-alive connections after 30 s; one idle for longer
# than this is not reused, so a request rarely meets a connection the server
# is just closing.
_IDLE_REUSE_S = 15.0


def _moment(value: Moment) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, datetime.datetime):
        raise TypeError("a moment must be a datetime or an RFC 3339 string, not %s"
                        % type(value).__name__)
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _close_all(conns: List[http.client.HTTPConnection], lock: threading.Lock) -> None:
    with lock:
        todo = list(conns)
        conns.clear()
    for conn in todo:
        conn.close()


def _seg(value: Union[int, str]) -> str:
    """One path segment (a user or session id), escaped."""
    return urllib.parse.quote(str(value), safe="")


class UserManagementService:
    """A client of one usersd server.

    >>> service = UserManagementService("http://127.0.0.1:8000")
    >>> service.login("admin", "secret")  # or UserManagementService(url, token="...")
    >>> service.set_user_online_status(user_id=1, status="online")

    One object may be shared by threads: each thread keeps its own
    keep-alive connection. ``token`` is the API key sent as
    ``Authorization: Token <key>``; :meth:`login` sets it and
    :meth:`logout` clears it.
    """

    def __init__(self, base_url: str, token: Optional[str] = None, *,
                 timeout: float = 10.0) -> None:
        """
        Args:
            base_url: where usersd answers, e.g. ``"http://127.0.0.1:8000"``
                or ``"https://example.com/usersd"`` behind a proxy that
                serves it under a path.
            token: an API key from a login (``POST /api/auth/login/``).
            timeout: seconds to wait for a connection or a reply.
        """
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http:// or https:// URL, not %r" % base_url)
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._local = threading.local()
        # every thread's connection, to close them all (close(), or when
        # the service is garbage-collected)
        self._conns: List[http.client.HTTPConnection] = []
        self._conns_lock = threading.Lock()
        weakref.finalize(self, _close_all, self._conns, self._conns_lock)

    def close(self) -> None:
        """Closes the keep-alive connections of every thread (a later call
        opens a new one). Also done when the service is garbage-collected,
        or at the end of a ``with`` block."""
        self._local = threading.local()
        _close_all(self._conns, self._conns_lock)

    def __enter__(self) -> "UserManagementService":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ----------------------------------------------------------------- HTTP

    def _connection(self, timeout: Optional[float] = None) -> http.client.HTTPConnection:
        t = self.timeout if timeout is None else timeout
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=t)
        return http.client.HTTPConnection(self._host, self._port, timeout=t)

    def _target(self, path: str, query: Optional[Mapping[str, Any]] = None) -> str:
        target = self._prefix + path
        if query:
            pairs = [(k, _query_value(v)) for k, v in query.items() if v is not None]
            if pairs:
                target += "?" + urllib.parse.urlencode(pairs)
        return target

    def _headers(self, extra: Optional[Mapping[str, str]] = None,
                 auth: bool = True) -> Dict[str, str]:
        h = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if auth and self.token:
            h["Authorization"] = "Token " + self.token
        if extra:
            h.update(extra)
        return h

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            with self._conns_lock:
                if conn in self._conns:
                    self._conns.remove(conn)
            conn.close()

    def _exchange(self, method: str, target: str, data: Optional[bytes],
                  headers: Dict[str, str]) -> Tuple[http.client.HTTPResponse, bytes]:
        """One request on this thread's connection; a reused connection the
        server closed while idle is replaced once."""
        for attempt in (0, 1):
            conn = getattr(self._local, "conn", None)
            idle = time.monotonic() - getattr(self._local, "used", 0.0)
            if conn is not None and idle > _IDLE_REUSE_S:
                self._drop_connection()
                conn = None
            reused = conn is not None
            if conn is None:
                conn = self._local.conn = self._connection()
                with self._conns_lock:
                    self._conns.append(conn)
            try:
                conn.request(method, target, body=data, headers=headers)
                resp = conn.getresponse()
                payload = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                self._drop_connection()
                if reused and attempt == 0:
                    continue
                raise UsersdError(0, "usersd at %s closed the connection: %s"
                                  % (self.base_url, e)) from e
            except (OSError, http.client.HTTPException) as e:
                self._drop_connection()
                raise UsersdError(0, "could not reach usersd at %s: %s"
                                  % (self.base_url, str(e) or type(e).__name__)) from e
            self._local.used = time.monotonic()
            if resp.will_close:
                self._drop_connection()
            return resp, payload
        raise AssertionError("unreachable")

    def _request(self, method: str, path: str, *, query: Optional[Mapping[str, Any]] = None,
                 body: Optional[Mapping[str, Any]] = None, auth: bool = True) -> Any:
        """Sends one API request; returns the reply's JSON (None for 204)."""
        headers = self._headers(auth=auth)
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        resp, payload = self._exchange(method, self._target(path, query), data, headers)
        parsed: Any = None
        if payload and (resp.getheader("Content-Type") or "").startswith("application/json"):
            try:
                parsed = json.loads(payload)
            except ValueError:
                parsed = None
        if 200 <= resp.status < 300:
            if resp.status != 204 and parsed is None and payload:
                raise UsersdError(resp.status, "usersd at %s answered %s %s with no JSON"
                                  % (self.base_url, method, path))
            return parsed
        raise self._error(resp, parsed)

    @staticmethod
    def _error(resp: http.client.HTTPResponse, parsed: Any) -> UsersdError:
        message = "HTTP %d %s" % (resp.status, resp.reason)
        fields: Dict[str, str] = {}
        if isinstance(parsed, dict):
            if isinstance(parsed.get("error"), str):
                message = parsed["error"]
            if isinstance(parsed.get("fields"), dict):
                fields = {str(k): str(v) for k, v in parsed["fields"].items()}
        retry_after = None
        value = resp.getheader("Retry-After")
        if value and value.strip().isdigit():
            retry_after = float(value.strip())
        return UsersdError(resp.status, message, fields, retry_after)

    # ------------------------------------------------------ authentication

    def login(self, username: str, password: str) -> JSON:
        """Logs in (the user goes online) and keeps the new token for the
        calls that follow. Returns ``{"token", "user"}``."""
        reply = self._request("POST", "/api/auth/login/",
                              body={"username": username, "password": password}, auth=False)
        self.token = reply["token"]
        return reply

    def logout(self) -> None:
        """Ends this session (its token is revoked) and forgets the token."""
        self._request("POST", "/api/auth/logout/")
        self.token = None

    def logout_all(self) -> None:
        """Ends every session of the caller (the user goes offline) and
        forgets the token."""
        self._request("POST", "/api/auth/logout-all/")
        self.token = None

    def me(self) -> JSON:
        """The caller's user object."""
        return self._request("GET", "/api/users/me/")

    def heartbeat(self) -> JSON:
        """Marks the caller active (online). Returns ``{"user_id",
        "online_status", "last_seen", "is_online"}``."""
        return self._request("POST", "/api/users/me/heartbeat/")

    # ------------------------------------------------- the seed's three calls

    @staticmethod
    def _status_body(status: str, manual: Optional[bool]) -> JSON:
        body: JSON = {"status": status}
        if manual is not None:
            body["manual"] = manual
        return body

    def set_user_online_status(self, user_id: int, status: str,
                               manual: Optional[bool] = None) -> JSON:
        """Sets a user's status: ``"online"``, ``"away"`` or ``"offline"``
        (staff, or the user themself). ``manual=True`` (with away or
        offline) keeps it against everything automatic until a status is
        set again. Returns ``{"message", "user_id", "online_status",
        "last_seen", ...}``."""
        return self._request("POST", "/api/users/admin/users/%s/set-online-status/" % _seg(user_id),
                             body=self._status_body(status, manual))

    def get_user_online_status(self, user_id: int) -> JSON:
        """One user's ``{"user_id", "username", "online_status",
        "last_seen", "is_online"}``."""
        return self._request("GET", "/api/users/admin/users/%s/online-status/" % _seg(user_id))

    def get_online_users(self, page: int = 1, per_page: int = 50) -> JSON:
        """The users online now, most recently seen first: ``{"online_users",
        "online_count", "pagination"}``."""
        return self._request("GET", "/api/users/admin/users/online/",
                             query={"page": page, "per_page": per_page})

    def set_my_status(self, status: str, manual: Optional[bool] = None) -> JSON:
        """Sets the caller's own status (see :meth:`set_user_online_status`)."""
        return self._request("POST", "/api/users/me/online-status/",
                             body=self._status_body(status, manual))

    def get_statuses(self, ids: Iterable[int]) -> JSON:
        """Several users' statuses at once (1 to 100 ids): ``{"statuses":
        [...]}`` in the order asked, unknown ids left out."""
        return self._request("GET", "/api/users/admin/users/online-status/",
                             query={"ids": ",".join(str(i) for i in ids)})

    # ----------------------------------------------------------------- users

    def list_users(self, *, online_status: Optional[str] = None,
                   is_active: Optional[bool] = None, is_staff: Optional[bool] = None,
                   search: Optional[str] = None, ordering: Optional[str] = None,
                   page: Optional[int] = None, per_page: Optional[int] = None) -> JSON:
        """The management list (staff): ``{"users", "pagination"}``.
        ``ordering`` is ``id``, ``username``, ``date_joined`` or
        ``last_seen``, optionally prefixed ``-``; filters left None are not
        sent."""
        return self._request("GET", "/api/users/management/list/", query={
            "online_status": online_status, "is_active": is_active, "is_staff": is_staff,
            "search": search, "ordering": ordering, "page": page, "per_page": per_page})

    def create_user(self, username: str, password: str, **fields: Any) -> JSON:
        """Creates a user (staff); ``fields`` may be ``email``,
        ``first_name``, ``last_name``, ``is_staff``, ``is_active``. Returns
        the new user."""
        body: JSON = {"username": username, "password": password}
        body.update(fields)
        return self._request("POST", "/api/users/management/users/", body=body)

    def get_user(self, user_id: int) -> JSON:
        """One user object (staff)."""
        return self._request("GET", "/api/users/management/users/%s/" % _seg(user_id))

    def update_user(self, user_id: int, **fields: Any) -> JSON:
        """Changes the given fields of a user (staff; ``password`` too).
        Returns the updated user."""
        return self._request("PATCH", "/api/users/management/users/%s/" % _seg(user_id),
                             body=fields)

    def delete_user(self, user_id: int) -> None:
        """Deletes a user with its sessions and presence (staff)."""
        self._request("DELETE", "/api/users/management/users/%s/" % _seg(user_id))

    # ------------------------------------------------------------ statistics

    def statistics(self) -> JSON:
        """``{"total_users", "active_users", ..., "online_ratio"}`` (staff)."""
        return self._request("GET", "/api/users/management/statistics/")

    def statistics_history(self, from_: Optional[Moment] = None, to: Optional[Moment] = None,
                           bucket: Optional[str] = None) -> JSON:
        """Users online over time (staff): ``{"from", "to", "bucket",
        "points"}``; ``bucket`` is ``1m``, ``5m``, ``1h`` or ``1d``; the
        window defaults to the last 24 hours."""
        return self._request("GET", "/api/users/management/statistics/history/", query={
            "from": _moment(from_) if from_ is not None else None,
            "to": _moment(to) if to is not None else None, "bucket": bucket})

    def presence_history(self, user_id: int, from_: Optional[Moment] = None,
                         to: Optional[Moment] = None) -> JSON:
        """A user's status over time (staff, or the user themself):
        ``{"user_id", "from", "to", "intervals", "totals"}``."""
        return self._request(
            "GET", "/api/users/admin/users/%s/presence-history/" % _seg(user_id),
            query={"from": _moment(from_) if from_ is not None else None,
                   "to": _moment(to) if to is not None else None})

    # -------------------------------------------------------------- sessions

    def my_sessions(self) -> JSON:
        """The caller's sessions: ``{"sessions": [{"id", "created",
        "last_used", "user_agent", "client_ip", "current"}...]}``."""
        return self._request("GET", "/api/users/me/sessions/")

    def revoke_session(self, session_id: int) -> None:
        """Ends one of the caller's sessions (its token stops working)."""
        self._request("DELETE", "/api/users/me/sessions/%s/" % _seg(session_id))

    def user_sessions(self, user_id: int) -> JSON:
        """A user's sessions (staff): ``{"sessions": [...]}``."""
        return self._request("GET", "/api/users/management/users/%s/sessions/" % _seg(user_id))

    def revoke_user_sessions(self, user_id: int) -> None:
        """Ends every session of a user (staff); the user goes offline."""
        self._request("DELETE", "/api/users/management/users/%s/sessions/" % _seg(user_id))

    # -------------------------------------------------- status message, DND

    @staticmethod
    def _own_or_user(user_id: Optional[int], what: str) -> str:
        if user_id is None:
            return "/api/users/me/%s/" % what
        return "/api/users/management/users/%s/%s/" % (_seg(user_id), what)

    def set_status_message(self, text: str, *, expires_at: Optional[Moment] = None,
                           expires_in: Optional[int] = None,
                           user_id: Optional[int] = None) -> JSON:
        """Sets the caller's status message (or, staff, ``user_id``'s): 1 to
        100 characters, ending at ``expires_at`` or after ``expires_in``
        seconds (not both), or never. Returns ``{"text", "expires_at"}``."""
        body: JSON = {"text": text}
        if expires_at is not None:
            body["expires_at"] = _moment(expires_at)
        if expires_in is not None:
            body["expires_in"] = expires_in
        return self._request("PUT", self._own_or_user(user_id, "status-message"), body=body)

    def clear_status_message(self, user_id: Optional[int] = None) -> None:
        """Clears the caller's status message (or, staff, ``user_id``'s)."""
        self._request("DELETE", self._own_or_user(user_id, "status-message"))

    def set_dnd(self, until: Optional[Moment] = None, minutes: Optional[int] = None,
                user_id: Optional[int] = None) -> JSON:
        """Turns on do-not-disturb for the caller (or, staff, ``user_id``):
        until a moment, for ``minutes`` (1-10080), or, with neither, until
        it is turned off. Returns ``{"until"}``."""
        body: JSON = {}
        if until is not None:
            body["until"] = _moment(until)
        if minutes is not None:
            body["minutes"] = minutes
        return self._request("PUT", self._own_or_user(user_id, "dnd"), body=body)

    def clear_dnd(self, user_id: Optional[int] = None) -> None:
        """Turns do-not-disturb off for the caller (or, staff, ``user_id``)."""
        self._request("DELETE", self._own_or_user(user_id, "dnd"))

    # -------------------------------------------------------------- changes

    def changes(self, since: Optional[int] = None, limit: Optional[int] = None) -> JSON:
        """The presence change log for polling: ``{"changes": [{"seq", ...}],
        "next_since"}``. Without ``since`` it starts from now (no changes,
        and the position to poll from). A ``since`` past the log's
        retention raises UsersdError 410: reload the state, then poll from
        a fresh position."""
        return self._request("GET", "/api/users/presence/changes/",
                             query={"since": since, "limit": limit})

    def health(self) -> JSON:
        """``{"status": "ok"}`` when the server is up (no token needed)."""
        return self._request("GET", "/healthz")

    # --------------------------------------------------------------- stream

    def stream(self, ids: Optional[Iterable[int]] = None,
               last_event_id: Optional[Union[int, str]] = None, *,
               read_timeout: float = 45.0, retry_initial: Optional[float] = None,
               retry_max: float = 30.0, max_retries: Optional[int] = None) -> EventStream:
        """The live presence stream as an iterator of events, each a dict
        ``{"event": "presence" | "status_message" | "dnd" | "snapshot" |
        "resync", "id": int or None, "data": dict}``.

        With ``ids`` only those users' events come, after a ``snapshot`` of
        their current state. It reconnects by itself when the connection
        drops or the server restarts, sending ``Last-Event-ID`` so that the
        events it missed arrive first, each once; between attempts it waits
        with exponential backoff (from ``retry_initial`` seconds, by
        default the server's ``retry:`` hint or 1 s, up to ``retry_max``) and gives up, raising the
        last error, after ``max_retries`` failed attempts in a row (None:
        never). A ``resync`` event means the gap was too long to replay:
        reload the state (a filtered stream sends a fresh ``snapshot``
        after it). Errors the server will not change its mind about (401,
        403, 400) raise UsersdError at once.

        Close it with ``.close()`` (from any thread) or use it as a
        context manager::

            with service.stream(ids=[1, 2]) as events:
                for event in events:
                    ...
        """
        return EventStream(self, None if ids is None else [int(i) for i in ids],
                           None if last_event_id is None else str(last_event_id),
                           read_timeout=read_timeout, retry_initial=retry_initial,
                           retry_max=retry_max, max_retries=max_retries)
