"""Two ways to make the calls of RestComm's Python SDK (Restcomm_Python_SDk 1.3.1):

- ``Replay`` makes each call with ``requests`` exactly as the SDK's source does: same URL (``.json``
  in mid-path, trailing slashes, the redundant ``?``), ``auth=(Sid, AuthToken)``, form ``data=``,
  ``params=``, no Accept header of its own; then it hands back what the SDK would (an error string
  for the statuses the SDK maps, else ``json.loads`` of the body).
- ``RealSdk`` imports the SDK itself from a checkout (``RESTCOMM_SDK_PATH``) and calls its classes.

Both answer an ``Outcome``: what the caller of the SDK gets, plus the HTTP status seen on the wire
(``Wire`` observes every ``requests`` exchange, so the status is known for the real SDK too).
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import requests

# The messages the SDK returns instead of raising, per status (its wording does not matter here:
# any of them means the call failed, and the assertion message shows the status).
SDK_ERRORS = {401: "Authentication Error!", 404: "Base Url is Incorrect!", 400: "Bad request (SDK: too weak)",
              409: "Duplicate Name not allowed", 500: "Please enter correct kind of Application!"}


@dataclass
class Outcome:
    status: int | None  # HTTP status of the (last) exchange
    content: Any = None  # what the SDK returns to its caller
    raised: BaseException | None = None  # what the SDK let escape instead (e.g. JSONDecodeError)

    @property
    def body_was_empty(self) -> bool:
        return isinstance(self.raised, json.JSONDecodeError)


@dataclass
class Wire:
    """Records every response ``requests`` receives while ``watching``."""

    responses: list[requests.Response] = field(default_factory=list)

    @contextmanager
    def watching(self) -> Iterator[None]:
        original = requests.Session.send
        wire = self

        def send(session: requests.Session, request: requests.PreparedRequest, **kw: Any) -> requests.Response:
            response = original(session, request, **kw)
            wire.responses.append(response)
            return response

        requests.Session.send = send  # type: ignore[method-assign]
        try:
            yield
        finally:
            requests.Session.send = original  # type: ignore[method-assign]

    @property
    def last(self) -> requests.Response | None:
        return self.responses[-1] if self.responses else None


class Driver:
    name = "driver"

    def __init__(self, sid: str, token: str, base: str):
        self.sid, self.token, self.base = sid, token, base
        self.wire = Wire()

    def as_account(self, sid: str, token: str) -> Driver:
        return type(self)(sid, token, self.base)

    def _observe(self, fn: Callable[[], Any]) -> Outcome:
        self.wire.responses.clear()
        with self.wire.watching():
            try:
                content = fn()
            except json.JSONDecodeError as exc:
                last = self.wire.last
                return Outcome(last.status_code if last is not None else None, raised=exc)
        last = self.wire.last
        return Outcome(last.status_code if last is not None else None, content)


class Replay(Driver):
    """The SDK's requests, re-typed from its source (restcomm-api.md §9.1)."""

    name = "replay"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.sid, self.token)

    def _sdk(self, response: requests.Response, mapped: tuple[int, ...]) -> Any:
        if response.status_code in mapped:
            return SDK_ERRORS[response.status_code]
        return json.loads(response.text)

    def _get(self, url: str, mapped: tuple[int, ...] = (401, 404), **kw: Any) -> Outcome:
        return self._observe(lambda: self._sdk(requests.get(url, auth=self.auth, **kw), mapped))

    def _post(self, url: str, data: dict[str, str], mapped: tuple[int, ...] = (401, 404)) -> Outcome:
        return self._observe(lambda: self._sdk(requests.post(url, data=data, auth=self.auth), mapped))

    def _delete(self, url: str) -> Outcome:
        return self._observe(lambda: self._sdk(requests.delete(url, auth=self.auth), (401, 404)))

    # Account (Restcomm/Account/AccountInfo.py)
    def account_details(self) -> Outcome:
        return self._get(self.base + "/Accounts.json/" + self.sid)

    def change_password(self, password: str) -> Outcome:
        return self._post(self.base + "/Accounts.json/" + self.sid, {"AccountSid": self.sid, "Password": password},
                          (401, 404, 400))

    def create_sub_account(self, friendly_name: str, email: str, password: str) -> Outcome:
        return self._post(self.base + "/Accounts.json/",
                          {"FriendlyName": friendly_name, "EmailAddress": email, "Password": password},
                          (401, 404, 409, 400))

    def close_sub_account(self, sub_sid: str) -> Outcome:
        return self._post(self.base + "/Accounts.json/" + sub_sid, {"Status": "closed"})

    def sub_accounts(self) -> Outcome:
        return self._get(self.base + "/Accounts.json/")

    # Clients (Restcomm/Client/Client.py)
    def create_client(self, login: str, password: str) -> Outcome:
        return self._post(self.base + "/Accounts/" + self.sid + "/Clients.json",
                          {"Login": login, "Password": password}, (401, 404, 400))

    def clients(self) -> Outcome:
        return self._get(self.base + "/Accounts/" + self.sid + "/Clients.json")

    def change_client_password(self, client_sid: str, password: str) -> Outcome:
        return self._post(self.base + "/Accounts/" + self.sid + "/Clients.json/" + client_sid,
                          {"Password": password}, (401, 404, 400))

    def delete_client(self, client_sid: str) -> Outcome:
        return self._delete(self.base + "/Accounts/" + self.sid + "/Clients.json/" + client_sid)

    # Applications (Restcomm/Applications/Applications.py)
    def create_application(self, friendly_name: str, kind: str) -> Outcome:
        data = {"FriendlyName": friendly_name, "ApiVersion": "2012-04-24", "HasVoiceCallerIdLookup": "false",
                "RcmUrl": "cloud.restcomm.com/restcomm-rvd/services/apps/foobar/controller", "Kind": kind}
        return self._post(self.base + "/Accounts/" + self.sid + "/Applications.json", data, (401, 404, 500))

    def applications(self) -> Outcome:
        return self._get(self.base + "/Accounts/" + self.sid + "/Applications.json/")

    def update_application(self, app_sid: str, friendly_name: str) -> Outcome:
        return self._post(self.base + "/Accounts/" + self.sid + "/Applications.json/" + app_sid,
                          {"FriendlyName": friendly_name})

    def delete_application(self, app_sid: str) -> Outcome:
        return self._delete(self.base + "/Accounts/" + self.sid + "/Applications.json/" + app_sid)

    # Numbers (Restcomm/IncomingNumber/IncomingNumber.py, Restcomm/AvailableNumber/AvailableNumber.py)
    def incoming_numbers(self) -> Outcome:
        return self._get(self.base + "/Accounts/" + self.sid + "/IncomingPhoneNumbers.json")

    def attach_number(self, number: str, voice_url: str) -> Outcome:
        return self._post(self.base + "/Accounts/" + self.sid + "/IncomingPhoneNumbers.json",
                          {"PhoneNumber": number, "VoiceUrl": voice_url, "isSIP": "true"})

    def delete_number(self, number_sid: str) -> Outcome:
        return self._delete(self.base + "/Accounts/" + self.sid + "/IncomingPhoneNumbers.json/" + number_sid)

    def available_numbers(self, area_code: str) -> Outcome:
        return self._get(self.base + "/Accounts/" + self.sid + "/AvailablePhoneNumbers/US/Local.json",
                         params={"AreaCode": area_code})

    # Notifications (Restcomm/Notification/Notification.py)
    def notifications(self) -> Outcome:
        return self._get(self.base + "/Accounts/" + self.sid + "/Notifications.json")

    def notifications_by_error_code(self, error_code: str) -> Outcome:
        return self._get(self.base + "/Accounts/" + self.sid + "/Notifications.json?",
                         params={"ErrorCode": error_code})

    def notifications_page(self, page_size: str) -> Outcome:
        return self._get(self.base + "/Accounts/" + self.sid + "/Notifications.json?",
                         params={"PageSize": page_size})


class RealSdk(Driver):
    """The SDK's own classes, imported from a checkout of RestComm/restcomm-sdk-python."""

    name = "real SDK"
    sdk: ModuleType
    incoming: ModuleType

    @classmethod
    def load(cls, checkout: Path) -> None:
        if not (checkout / "Restcomm_Python_SDk" / "__init__.py").is_file():
            raise FileNotFoundError(f"{checkout} holds no Restcomm_Python_SDk package (expected a checkout "
                                    "of RestComm/restcomm-sdk-python)")
        sys.path.insert(0, str(checkout))
        try:
            cls.sdk = importlib.import_module("Restcomm_Python_SDk")
            # Not re-exported by the package's __init__.
            cls.incoming = importlib.import_module("Restcomm_Python_SDk.Restcomm.IncomingNumber.IncomingNumber")
        finally:
            sys.path.remove(str(checkout))
        origin = Path(cls.sdk.__file__ or "").resolve()
        if checkout.resolve() not in origin.parents:
            raise ImportError(f"Restcomm_Python_SDk was imported from {origin}, not from {checkout}")

    @property
    def client(self) -> Any:
        return self.sdk.client(self.sid, self.token, self.base)

    def account_details(self) -> Outcome:
        return self._observe(lambda: self.sdk.AccountDetails(self.client).Details())

    def change_password(self, password: str) -> Outcome:
        return self._observe(lambda: self.sdk.ChangeAccountPassword(password, self.client).ChangePassword())

    def create_sub_account(self, friendly_name: str, email: str, password: str) -> Outcome:
        return self._observe(lambda: self.sdk.CreateSubAccount(friendly_name, email, password, self.client).Create())

    def close_sub_account(self, sub_sid: str) -> Outcome:
        return self._observe(lambda: self.sdk.CloseSubAccount(sub_sid, self.client).Close())

    def sub_accounts(self) -> Outcome:
        return self._observe(lambda: self.sdk.SubAccountDetails(self.client).Details())

    def create_client(self, login: str, password: str) -> Outcome:
        return self._observe(lambda: self.sdk.CreateClient(login, password, self.client).Create())

    def clients(self) -> Outcome:
        return self._observe(lambda: self.sdk.ClientList(self.client).GetList())

    def change_client_password(self, client_sid: str, password: str) -> Outcome:
        return self._observe(lambda: self.sdk.ChangeClientPassword(client_sid, password, self.client).ChangePassword())

    def delete_client(self, client_sid: str) -> Outcome:
        return self._observe(lambda: self.sdk.DeleteClient(client_sid, self.client).Delete())

    def create_application(self, friendly_name: str, kind: str) -> Outcome:
        return self._observe(lambda: self.sdk.CreateApplication(friendly_name, kind, self.client).Create())

    def applications(self) -> Outcome:
        return self._observe(lambda: self.sdk.GetApplicationList(self.client).GetList())

    def update_application(self, app_sid: str, friendly_name: str) -> Outcome:
        return self._observe(lambda: self.sdk.UpdateApplication(app_sid, friendly_name, self.client).Update())

    def delete_application(self, app_sid: str) -> Outcome:
        return self._observe(lambda: self.sdk.DeleteApplication(app_sid, self.client).Delete())

    def incoming_numbers(self) -> Outcome:
        return self._observe(lambda: self.incoming.PhoneNumberList(self.client).GetList())

    def attach_number(self, number: str, voice_url: str) -> Outcome:
        return self._observe(lambda: self.incoming.AttachPhoneNumber(number, voice_url, self.client).Attach())

    def delete_number(self, number_sid: str) -> Outcome:
        return self._observe(lambda: self.incoming.DeletePhoneNumber(number_sid, self.client).Delete())

    def available_numbers(self, area_code: str) -> Outcome:
        return self._observe(lambda: self.sdk.NumberAvailablity(area_code, self.client).Availability())

    def notifications(self) -> Outcome:
        return self._observe(lambda: self.sdk.NotificationList(self.client).GetList())

    def notifications_by_error_code(self, error_code: str) -> Outcome:
        return self._observe(lambda: self.sdk.NotificationFilter(error_code, self.client).FilterErrorCode())

    def notifications_page(self, page_size: str) -> Outcome:
        return self._observe(lambda: self.sdk.NotificationFilter(page_size, self.client).FilterPage())
