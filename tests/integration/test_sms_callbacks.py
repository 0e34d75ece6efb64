"""Status callbacks: every transition, Twilio's and Restcomm's parameters, signed, in order per message,
retried with backoff while the application fails, given up with a notification."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from twilio.twiml.messaging_response import MessagingResponse

from tests.support.server import Tenant
from tests.support.sms_app import (
    Answer,
    AppServer,
    Seen,
    add_number,
    notifications,
    send,
    unique_number,
    wait_notification,
    wait_status,
    wait_until,
)

CALLBACK_PARAMS = {"MessageSid", "MessageStatus", "SmsSid", "SmsStatus", "AccountSid", "From", "To", "ApiVersion"}


@pytest.fixture(scope="module")
def apps() -> Iterator[AppServer]:
    server = AppServer().start()
    yield server
    server.stop()


def statuses(seen: list[Seen]) -> list[str]:
    return [s.params["MessageStatus"] for s in seen]


def test_every_transition_in_order_with_both_parameter_sets(tenant: Tenant, apps: AppServer) -> None:
    path = apps.new_path("cb")
    url = apps.route(path, Answer("", 204, "text/plain"), token=tenant.token)
    with tenant.client() as c:
        a, b = unique_number(), unique_number()
        add_number(c, tenant.sid, a)
        add_number(c, tenant.sid, b)
        sent = send(c, tenant.sid, a, b, "track me", StatusCallback=url).json()
        seen = apps.wait(path, 3)
        assert statuses(seen) == ["sending", "sent", "delivered"]  # no callback for queued, as at Twilio
        for s in seen:
            assert s.signature_valid and s.method == "POST"
            assert CALLBACK_PARAMS <= s.form.keys() and "ErrorCode" not in s.form
            assert s.form["MessageSid"] == s.form["SmsSid"] == sent["sid"]
            assert s.form["SmsStatus"] == s.form["MessageStatus"]
            assert (s.form["From"], s.form["To"], s.form["AccountSid"]) == (a, b, tenant.sid)
        wait_status(c, tenant.sid, sent["sid"], {"delivered"})


def test_failure_carries_a_numeric_error_code_and_get_works(tenant: Tenant, apps: AppServer) -> None:
    path = apps.new_path("cb-get")
    url = apps.route(path, Answer("ok", 200, "text/plain"), token=tenant.token)
    with tenant.client() as c:
        a = unique_number()
        add_number(c, tenant.sid, a)
        send(c, tenant.sid, a, "+15551239876", "nowhere", StatusCallback=url, StatusCallbackMethod="GET")
        seen = apps.wait(path, 2)
        assert statuses(seen) == ["sending", "failed"]
        assert all(s.method == "GET" and s.signature_valid for s in seen)
        assert seen[1].query["ErrorCode"] == "21612"


def test_retried_with_backoff_and_still_in_order(tenant: Tenant, apps: AppServer) -> None:
    path = apps.new_path("flaky")
    lock = threading.Lock()
    calls = {"n": 0}

    def flaky(s: Seen) -> Answer:
        with lock:
            calls["n"] += 1
            n = calls["n"]
        return Answer("busy", 503, "text/plain") if n <= 2 else Answer("", 200, "text/plain")

    url = apps.route(path, flaky, token=tenant.token)
    with tenant.client() as c:
        a, b = unique_number(), unique_number()
        add_number(c, tenant.sid, a)
        add_number(c, tenant.sid, b)
        send(c, tenant.sid, a, b, "retry me", StatusCallback=url)
        seen = apps.wait(path, 5)
        # Two failures of 'sending', its success, and only then the later ones.
        assert statuses(seen) == ["sending", "sending", "sending", "sent", "delivered"]
        assert not [n for n in notifications(c, tenant.sid, ErrorCode="11200") if url in (n.get("request_url") or "")]


def test_given_up_with_a_notification_then_the_next_one_goes(tenant: Tenant, apps: AppServer) -> None:
    path = apps.new_path("down")
    url = apps.route(path, Answer("down", 500, "text/plain"), token=tenant.token)
    with tenant.client() as c:
        a, b = unique_number(), unique_number()
        add_number(c, tenant.sid, a)
        add_number(c, tenant.sid, b)
        sent = send(c, tenant.sid, a, b, "nobody listens", StatusCallback=url).json()
        seen = apps.wait(path, 12)  # callback_max_attempts = 4, for each of the three statuses
        assert statuses(seen) == ["sending"] * 4 + ["sent"] * 4 + ["delivered"] * 4
        note = wait_notification(c, tenant.sid, 11200)
        assert note["message_sid"] == sent["sid"] and note["request_url"] == url and note["response_body"] == "down"
        wait_until(lambda: notifications(c, tenant.sid, ErrorCode="11200"), lambda n: len(n) == 3,
                   what="one notification per abandoned callback")


def test_client_errors_are_not_retried(tenant: Tenant, apps: AppServer) -> None:
    path = apps.new_path("gone")
    url = apps.route(path, Answer("no such page", 404, "text/plain"), token=tenant.token)
    with tenant.client() as c:
        a, b = unique_number(), unique_number()
        add_number(c, tenant.sid, a)
        add_number(c, tenant.sid, b)
        send(c, tenant.sid, a, b, "x", StatusCallback=url)
        seen = apps.wait(path, 3)
        assert statuses(seen) == ["sending", "sent", "delivered"]


def test_reply_status_callback_attribute(tenant: Tenant, apps: AppServer) -> None:
    cb = apps.new_path("reply-cb")
    apps.route(cb, Answer("", 204, "text/plain"), token=tenant.token)
    response = MessagingResponse()
    response.message("reply", status_callback=cb[1:])  # relative: resolved against the document URL
    app = apps.new_path("replier")
    app_url = apps.route(app, Answer(str(response)), token=tenant.token)
    with tenant.client() as c:
        ours, user = unique_number(), unique_number()
        add_number(c, tenant.sid, ours, SmsUrl=app_url)
        add_number(c, tenant.sid, user)
        send(c, tenant.sid, user, ours, "hi")
        seen = apps.wait(cb, 3)
        assert statuses(seen) == ["sending", "sent", "delivered"]
        assert seen[0].form["From"] == ours and seen[0].form["To"] == user and seen[0].form["Body"] == "reply"
        assert all(s.signature_valid for s in seen)
