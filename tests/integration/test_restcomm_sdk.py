"""RestComm's official Python SDK (Restcomm_Python_SDk 1.3.1) works against this server unchanged.

Every scenario runs twice:

- ``replay``: the SDK's calls re-made with ``requests`` exactly as its source makes them (always
  runs; see tests/support/sdk/drivers.py). The PyPI package ``restcomm-python-sdk`` is broken (it holds only
  an ``__init__.py``), so CI cannot install the SDK itself.
- ``real SDK``: the SDK's own classes, imported from a checkout of RestComm/restcomm-sdk-python named
  by the environment variable ``RESTCOMM_SDK_PATH`` (the directory that contains
  ``Restcomm_Python_SDk/``). Skipped, saying why, when the variable is not set.

The SDK sends no Accept header and relies on ``.json`` in the path; it reads snake_case JSON. Its
delete helpers ``json.loads`` the answer, so an empty 200/204 body makes them raise JSONDecodeError
(against Restcomm too); the scenarios accept that and check on the server that the delete happened.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.sdk.drivers import Driver, Outcome, RealSdk, Replay
from tests.support.sdk.store import write_notifications
from tests.support.server import Server, Tenant

STRONG = "Tr0ub4dor&3"
OTHER_STRONG = "RestCom1233@"
SKIP_REAL = (
    "RESTCOMM_SDK_PATH is not set: the real SDK cannot be installed from PyPI (restcomm-python-sdk ships only "
    "an __init__.py), so it only runs from a checkout of RestComm/restcomm-sdk-python; set RESTCOMM_SDK_PATH to "
    "the directory that contains Restcomm_Python_SDk/ to run these calls through it"
)


@pytest.fixture(scope="session")
def real_sdk_loaded() -> bool:
    path = os.environ.get("RESTCOMM_SDK_PATH", "").strip()
    if not path:
        return False
    RealSdk.load(Path(path).expanduser())  # a wrong path is a failure, not a skip: the run asked for the SDK
    return True


@pytest.fixture(params=["replay", "real SDK"])
def sdk(request: pytest.FixtureRequest, server: Server, tenant: Tenant, real_sdk_loaded: bool) -> Iterator[Driver]:
    if request.param == "real SDK":
        if not real_sdk_loaded:
            pytest.skip(SKIP_REAL)
        yield RealSdk(tenant.sid, tenant.token, server.api)
    else:
        yield Replay(tenant.sid, tenant.token, server.api)


def ok(out: Outcome, kind: type = dict, status: int = 200) -> object:
    assert out.raised is None, f"the SDK raised {out.raised!r} (HTTP {out.status})"
    assert out.status == status, f"HTTP {out.status}: the SDK returned {out.content!r}"
    assert isinstance(out.content, kind), out.content
    return out.content


def deleted(out: Outcome, status: int) -> None:
    """An SDK delete: the server answered ``status``; the SDK returns its JSON or chokes on an empty body."""
    assert out.status == status, f"HTTP {out.status}: {out.content!r} {out.raised!r}"
    assert out.body_was_empty or isinstance(out.content, dict), (out.content, out.raised)


def unique_number() -> str:
    return "+1555" + str(uuid.uuid4().int)[:7]


# -- accounts -------------------------------------------------------------------------------


def test_account_details(sdk: Driver, tenant: Tenant) -> None:
    account = ok(sdk.account_details())
    assert account["sid"] == tenant.sid  # type: ignore[index]
    assert account["email_address"] == tenant.email  # type: ignore[index]
    assert account["status"] == "active"  # type: ignore[index]
    assert account["auth_token"] == tenant.token  # type: ignore[index]
    assert account["friendly_name"] and account["date_created"] and account["uri"]  # type: ignore[index]


def test_change_password(sdk: Driver, server: Server, tenant: Tenant) -> None:
    account = ok(sdk.change_password(OTHER_STRONG))
    assert account["sid"] == tenant.sid  # type: ignore[index]
    token = account["auth_token"]  # type: ignore[index]
    # The new password logs in; the AuthToken the SDK got back keeps working for the SDK.
    assert httpx.get(f"{server.api}/Accounts/{tenant.sid}.json", auth=(tenant.email, OTHER_STRONG)).status_code == 200
    assert httpx.get(f"{server.api}/Accounts/{tenant.sid}.json", auth=(tenant.email, tenant.password)).status_code == 401
    assert ok(sdk.as_account(tenant.sid, token).account_details())["sid"] == tenant.sid  # type: ignore[index]
    # A weak password is refused (the SDK maps the 400 to a message).
    out = sdk.as_account(tenant.sid, token).change_password("weak")
    assert out.status == 400 and isinstance(out.content, str)


def test_sub_accounts_create_list_close(sdk: Driver, server: Server, tenant: Tenant) -> None:
    email = f"SDK-{uuid.uuid4().hex[:8]}@Example.com"
    sub = ok(sdk.create_sub_account("SDK sub-account", email, STRONG))
    assert re.fullmatch(r"AC[0-9a-f]{32}", sub["sid"])  # type: ignore[index]
    assert sub["email_address"] == email.lower()  # type: ignore[index]
    assert sub["friendly_name"] == "SDK sub-account"  # type: ignore[index]
    assert sub["status"] == "active" and sub["auth_token"]  # type: ignore[index]
    sub_sid, sub_token = sub["sid"], sub["auth_token"]  # type: ignore[index]
    # The sub-account's own credentials work through the SDK.
    assert ok(sdk.as_account(sub_sid, sub_token).account_details())["sid"] == sub_sid  # type: ignore[index]

    listed = ok(sdk.sub_accounts(), list)
    assert sub_sid in [a["sid"] for a in listed]  # type: ignore[attr-defined]
    again = sdk.create_sub_account("dup", email, STRONG)
    assert again.status == 409 and isinstance(again.content, str)

    closed = ok(sdk.close_sub_account(sub_sid))
    assert closed["sid"] == sub_sid and closed["status"] == "closed"  # type: ignore[index]
    assert [a["status"] for a in ok(sdk.sub_accounts(), list) if a["sid"] == sub_sid] == ["closed"]  # type: ignore[attr-defined]
    assert sdk.as_account(sub_sid, sub_token).account_details().status == 403


# -- clients --------------------------------------------------------------------------------


def test_clients(sdk: Driver, tenant: Tenant) -> None:
    login = f"sdk-{uuid.uuid4().hex[:8]}"
    created = ok(sdk.create_client(login, STRONG))
    assert re.fullmatch(r"CL[0-9a-f]{32}", created["sid"])  # type: ignore[index]
    assert created["login"] == login and created["account_sid"] == tenant.sid  # type: ignore[index]
    assert created["status"] == "1" and created["friendly_name"] == login  # type: ignore[index]
    client_sid = created["sid"]  # type: ignore[index]

    assert client_sid in [c["sid"] for c in ok(sdk.clients(), list)]  # type: ignore[attr-defined]

    changed = ok(sdk.change_client_password(client_sid, OTHER_STRONG))
    assert changed["sid"] == client_sid and changed["login"] == login  # type: ignore[index]
    weak = sdk.change_client_password(client_sid, "weak")
    assert weak.status == 400 and isinstance(weak.content, str)

    deleted(sdk.delete_client(client_sid), 200)
    assert client_sid not in [c["sid"] for c in ok(sdk.clients(), list)]  # type: ignore[attr-defined]
    gone = sdk.delete_client(client_sid)
    assert gone.status == 404 and isinstance(gone.content, str)


# -- applications ---------------------------------------------------------------------------


def test_applications(sdk: Driver, tenant: Tenant) -> None:
    created = ok(sdk.create_application("SDK app", "voice"))
    assert re.fullmatch(r"AP[0-9a-f]{32}", created["sid"])  # type: ignore[index]
    assert created["friendly_name"] == "SDK app" and created["kind"] == "voice"  # type: ignore[index]
    assert created["account_sid"] == tenant.sid and created["api_version"] == "2012-04-24"  # type: ignore[index]
    # The SDK's RcmUrl/HasVoiceCallerIdLookup are misspelt parameters: ignored, as Restcomm ignores them.
    assert created.get("rcml_url") is None and created["voice_caller_id_lookup"] is False  # type: ignore[attr-defined]
    app_sid = created["sid"]  # type: ignore[index]

    assert app_sid in [a["sid"] for a in ok(sdk.applications(), list)]  # type: ignore[attr-defined]

    updated = ok(sdk.update_application(app_sid, "SDK app renamed"))
    assert updated["sid"] == app_sid and updated["friendly_name"] == "SDK app renamed"  # type: ignore[index]

    deleted(sdk.delete_application(app_sid), 200)
    assert app_sid not in [a["sid"] for a in ok(sdk.applications(), list)]  # type: ignore[attr-defined]


def test_application_of_an_unknown_kind(sdk: Driver) -> None:
    out = sdk.create_application("bad kind", "fax")
    assert out.status == 400, (out.status, out.content)


# -- numbers --------------------------------------------------------------------------------


def test_available_numbers(sdk: Driver) -> None:
    found = ok(sdk.available_numbers("510"), list)
    assert sorted(n["phoneNumber"] for n in found) == ["+15105550100", "+15105552255"]  # type: ignore[attr-defined]
    assert all(n["friendlyName"] for n in found)  # type: ignore[attr-defined]
    assert ok(sdk.available_numbers("999"), list) == []


def test_incoming_numbers(sdk: Driver, tenant: Tenant) -> None:
    number = unique_number()
    attached = ok(sdk.attach_number(number, "http://127.0.0.1:9/voice.xml"))
    assert re.fullmatch(r"PN[0-9a-f]{32}", attached["sid"])  # type: ignore[index]
    assert attached["phone_number"] == number and attached["account_sid"] == tenant.sid  # type: ignore[index]
    assert attached["voice_url"] == "http://127.0.0.1:9/voice.xml"  # type: ignore[index]
    number_sid = attached["sid"]  # type: ignore[index]

    page = ok(sdk.incoming_numbers())
    assert number_sid in [n["sid"] for n in page["incomingPhoneNumbers"]]  # type: ignore[index]

    deleted(sdk.delete_number(number_sid), 204)
    page = ok(sdk.incoming_numbers())
    assert number_sid not in [n["sid"] for n in page["incomingPhoneNumbers"]]  # type: ignore[index]


# -- notifications --------------------------------------------------------------------------


def test_notifications(sdk: Driver, server: Server, tenant: Tenant) -> None:
    retrieval, parse = write_notifications(
        server.env,
        {"account_sid": tenant.sid, "error_code": 11200, "log": 0, "message_text": "HTTP retrieval failure"},
        {"account_sid": tenant.sid, "error_code": 12100, "log": 0, "message_text": "Document parse failure"},
    )
    everything = ok(sdk.notifications())
    assert sorted(n["sid"] for n in everything["notifications"]) == sorted([retrieval, parse])  # type: ignore[index]
    only = ok(sdk.notifications_by_error_code("11200"))
    assert [n["sid"] for n in only["notifications"]] == [retrieval]  # type: ignore[index]
    assert only["notifications"][0]["error_code"] == 11200  # type: ignore[index]
    page = ok(sdk.notifications_page("1"))
    assert page["page_size"] == 1 and page["total"] == 2 and len(page["notifications"]) == 1  # type: ignore[index]


# -- the replay is the SDK ------------------------------------------------------------------


def test_replay_sends_exactly_what_the_real_sdk_sends(server: Server, tenant: Tenant, real_sdk_loaded: bool) -> None:
    """With the SDK at hand, every call of the replay is compared with the SDK's own request: method,
    URL, headers and body, byte for byte. This keeps the always-run replay honest."""
    if not real_sdk_loaded:
        pytest.skip(SKIP_REAL)
    with tenant.client() as c:
        client_sid = c.post(f"/Accounts/{tenant.sid}/Clients.json",
                            data={"Login": f"x-{uuid.uuid4().hex[:8]}", "Password": STRONG}).json()["sid"]
        app_sid = c.post(f"/Accounts/{tenant.sid}/Applications.json", data={"FriendlyName": "x"}).json()["sid"]
        number_sid = c.post(f"/Accounts/{tenant.sid}/IncomingPhoneNumbers.json",
                            data={"PhoneNumber": unique_number(), "isSIP": "true"}).json()["sid"]
    sub_email = f"cmp-{uuid.uuid4().hex[:8]}@example.com"
    calls = [
        ("account_details", ()), ("change_password", (STRONG,)), ("create_sub_account", ("c", sub_email, STRONG)),
        ("sub_accounts", ()), ("close_sub_account", ("AC" + "0" * 32,)),
        ("create_client", (f"y-{uuid.uuid4().hex[:8]}", STRONG)), ("clients", ()),
        ("change_client_password", (client_sid, OTHER_STRONG)), ("delete_client", (client_sid,)),
        ("create_application", ("y", "voice")), ("applications", ()), ("update_application", (app_sid, "z")),
        ("delete_application", (app_sid,)),
        ("incoming_numbers", ()), ("attach_number", (unique_number(), "http://127.0.0.1:9/v")),
        ("delete_number", (number_sid,)), ("available_numbers", ("510",)),
        ("notifications", ()), ("notifications_by_error_code", ("11200",)), ("notifications_page", ("2",)),
    ]
    replay, real = Replay(tenant.sid, tenant.token, server.api), RealSdk(tenant.sid, tenant.token, server.api)
    for name, args in calls:
        sent = []
        for driver in (replay, real):
            getattr(driver, name)(*args)
            assert len(driver.wire.responses) == 1, name
            request = driver.wire.responses[0].request
            sent.append((request.method, request.url, dict(request.headers), request.body))
        assert sent[0] == sent[1], name
