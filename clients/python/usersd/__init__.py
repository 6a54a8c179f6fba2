"""Python client of usersd, the user-management and online-presence service.

    from usersd import UserManagementService, UsersdError

    service = UserManagementService("http://127.0.0.1:8000")
    service.login("admin", "secret")
    service.set_user_online_status(user_id=1, status="online")
    for event in service.stream(ids=[1, 2]):
        print(event["event"], event["data"])

Standard library only; see README.md for every call.
"""
from ._version import __version__
from .client import UserManagementService
from .errors import UsersdError
from .stream import Event, EventStream

__all__ = ["UserManagementService", "UsersdError", "Event", "EventStream", "__version__"]
