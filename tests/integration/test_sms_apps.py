"""Inbound messages → SMS applications → replies, over real HTTP with real applications on loopback.

Applications answer with TwiML from twilio's ``MessagingResponse`` or with hand-written RCML, and
check every request's X-Twilio-Signature with twilio's ``RequestValidator``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from twilio.twiml.messaging_response import MessagingResponse

from tests.support.server import Server, SmtpSink, Tenant
from tests.support.sms_app import (
    Answer,
    AppServer,
    Seen,
    add_number,
    messages,
    notifications,
    send,
    unique_number,
    wait_notification,
    wait_status,
    wait_until,
)

TWILIO_PARAMS = {"MessageSid", "SmsSid", "SmsMessageSid", "AccountSid", "From", "To", "Body", "NumSegments",
                 "NumMedia", "ApiVersion", "SmsStatus"}


@pytest.fixture(scope="module")
def apps() -> Iterator[AppServer]:
    server = AppServer().start()
    yield server
    server.stop()


def twiml(*bodies: str, **attrs: str) -> str:
    response = MessagingResponse()
    for body in bodies:
        response.message(body, **attrs)
    return str(response)


def app_number(c: httpx.Client, tenant: Tenant, apps: AppServer, answer: Answer | object, name: str = "app",
               query: str = "", **fields: str) -> tuple[str, str]:
    """A hosted number whose SmsUrl is a fresh route on the app server; returns (number, path)."""
    path = apps.new_path(name)
    url = apps.route(path + query, answer, token=tenant.token)  # type: ignore[arg-type]
    number = unique_number()
    add_number(c, tenant.sid, number, SmsUrl=url, **fields)
    return number, path


def inbound_at(c: httpx.Client, tenant: Tenant, number: str) -> list[dict[str, object]]:
    return [m for m in messages(c, tenant.sid, To=number) if m["direction"] == "inbound"]


def test_api_to_twiml_app_reply_to_rcml_app(tenant: Tenant, apps: AppServer) -> None:
    """API send → hosted number A → A's TwiML app replies → reply delivered to B → B's RCML app."""
    with tenant.client() as c:
        a, a_path = app_number(c, tenant, apps, lambda s: Answer(twiml(f"pong: {s.form['Body']}")), "twiml")
        b, b_path = app_number(c, tenant, apps, Answer("<Response></Response>"), "rcml")
        sent = send(c, tenant.sid, b, a, "ping & more").json()

        first = apps.wait(a_path)[0]
        assert first.signature_valid, "X-Twilio-Signature must validate with the account's AuthToken"
        assert first.method == "POST"
        assert TWILIO_PARAMS <= first.form.keys()
        assert first.form["From"] == b and first.form["To"] == a and first.form["Body"] == "ping & more"
        assert first.form["AccountSid"] == tenant.sid and first.form["SmsStatus"] == "received"
        assert first.form["MessageSid"] == first.form["SmsSid"] == first.form["SmsMessageSid"]
        assert first.form["NumSegments"] == "1" and first.form["NumMedia"] == "0"
        assert first.form["ApiVersion"] == "2012-04-24"

        second = apps.wait(b_path)[0]
        assert second.signature_valid
        assert second.form["From"] == a and second.form["To"] == b and second.form["Body"] == "pong: ping & more"

        wait_status(c, tenant.sid, sent["sid"], {"delivered"})
        reply = wait_until(lambda: [m for m in messages(c, tenant.sid, From=a) if m["direction"] == "outbound-reply"],
                           bool, what="the reply record")[0]
        wait_status(c, tenant.sid, reply["sid"], {"delivered"})
        received = c.get(f"/Accounts/{tenant.sid}/SMS/Messages/{first.form['MessageSid']}.json").json()
        assert received["direction"] == "inbound" and received["status"] == "received"


def test_rcml_sms_defaults_and_attributes(tenant: Tenant, apps: AppServer) -> None:
    with tenant.client() as c:
        other = unique_number()
        add_number(c, tenant.sid, other)
        rcml = (f"<Response><Sms>AT&T default reply</Sms><Sms to=\"{other}\">copy for {other}</Sms>"
                "<Sms>  </Sms><Sms>never</Sms></Response>")
        a, a_path = app_number(c, tenant, apps, Answer(rcml))
        sender = unique_number()
        add_number(c, tenant.sid, sender)
        send(c, tenant.sid, sender, a, "hi")
        apps.wait(a_path)
        back = wait_until(lambda: inbound_at(c, tenant, sender), bool, what="default reply")
        assert back[0]["body"] == "AT&T default reply" and back[0]["from"] == a  # to/from defaults
        copy = wait_until(lambda: inbound_at(c, tenant, other), bool, what="copy")
        assert copy[0]["body"] == f"copy for {other}"
        note = wait_notification(c, tenant.sid, 14103)  # the empty <Sms> stops the document
        assert note["log"] == 0
        assert not [m for m in messages(c, tenant.sid, Body="never")]


def test_fallback_url_after_a_failing_app(tenant: Tenant, apps: AppServer) -> None:
    with tenant.client() as c:
        fb_path = apps.new_path("fallback")
        fb_url = apps.route(fb_path, Answer(twiml("from the fallback")), token=tenant.token)
        a, a_path = app_number(c, tenant, apps, Answer("<html>oops</html>", 500, "text/html"), "broken",
                               SmsFallbackUrl=fb_url, SmsFallbackMethod="POST")
        sender = unique_number()
        add_number(c, tenant.sid, sender)
        send(c, tenant.sid, sender, a, "help me")
        fallback = apps.wait(fb_path)[0]
        assert fallback.signature_valid
        assert fallback.form["ErrorCode"] == "11200" and fallback.form["ErrorUrl"] == apps.url(a_path)
        assert fallback.form["Body"] == "help me"
        note = wait_notification(c, tenant.sid, 11200)
        assert note["request_url"] == apps.url(a_path) and note["request_method"] == "POST"
        assert "oops" in note["response_body"] and "Body=help+me" in note["request_variables"]
        back = wait_until(lambda: inbound_at(c, tenant, sender), bool, what="fallback reply")
        assert back[0]["body"] == "from the fallback"


def test_unreachable_app_is_11205(tenant: Tenant, apps: AppServer) -> None:
    with tenant.client() as c:
        a = unique_number()
        add_number(c, tenant.sid, a, SmsUrl="http://127.0.0.1:9/nothing-listens-here")
        sender = unique_number()
        add_number(c, tenant.sid, sender)
        send(c, tenant.sid, sender, a, "anyone?")
        note = wait_notification(c, tenant.sid, 11205)
        assert note["request_url"] == "http://127.0.0.1:9/nothing-listens-here"


def test_redirect_relative_url_and_query_strings_survive(tenant: Tenant, apps: AppServer, server: Server) -> None:
    with tenant.client() as c:
        second = apps.new_path("second")
        apps.route(second, lambda s: Answer(twiml(f"step {s.query.get('step')}")), token=tenant.token)
        a, first = app_number(c, tenant, apps, Answer(f"<Response><Redirect method=\"GET\">{second[1:]}?step=2"
                                                      "</Redirect></Response>"), "first", query="?x=1")
        sender = unique_number()
        add_number(c, tenant.sid, sender)
        send(c, tenant.sid, sender, a, "go")
        got = apps.wait(first)[0]
        assert got.query == {"x": "1"} and got.signature_valid  # SmsUrl's own query string kept
        redirected = apps.wait(second)[0]
        assert redirected.method == "GET" and redirected.signature_valid
        assert redirected.query["step"] == "2" and redirected.query["Body"] == "go"
        back = wait_until(lambda: inbound_at(c, tenant, sender), bool, what="redirected reply")
        assert back[0]["body"] == "step 2"


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (Answer("<Response><Message>unclosed</Response>"), 12100),
        (Answer("<!DOCTYPE x [<!ENTITY e 'boom'>]><Response><Message>&e;</Message></Response>"), 12100),
        (Answer("<Reply><Message>x</Message></Reply>"), 12102),
        (Answer("just text", 200, "text/plain"), 12300),
        (Answer("gone", 404, "text/plain"), 11200),
    ],
)
def test_bad_documents_are_notified(tenant: Tenant, apps: AppServer, answer: Answer, code: int) -> None:
    with tenant.client() as c:
        a, a_path = app_number(c, tenant, apps, answer, "bad")
        sender = unique_number()
        add_number(c, tenant.sid, sender)
        sent = send(c, tenant.sid, sender, a, "hello").json()
        apps.wait(a_path)
        note = wait_notification(c, tenant.sid, code)
        assert note["request_url"] == apps.url(a_path)
        assert note["message_sid"] != sent["sid"]  # about the inbound message, not the API one
        assert not inbound_at(c, tenant, sender)  # nothing was replied


def test_non_sms_verbs_media_and_document_order(tenant: Tenant, apps: AppServer) -> None:
    with tenant.client() as c:
        c_path = apps.new_path("collector")
        collector = unique_number()
        apps.route(c_path, Answer("<Response/>"), token=tenant.token)
        add_number(c, tenant.sid, collector, SmsUrl=apps.url(c_path))
        response = MessagingResponse()
        response.message("one", to=collector)
        response.add_child("Say", "Hello")  # a voice verb: 14110, skipped
        msg = response.message(to=collector)
        msg.body("two")
        msg.media("https://example.com/cat.png")  # SMS only: warning, text still sent
        response.message("three", to=collector)
        a, a_path = app_number(c, tenant, apps, Answer(str(response)), "verbs")
        sender = unique_number()
        add_number(c, tenant.sid, sender)
        send(c, tenant.sid, sender, a, "go")
        seen = apps.wait(c_path, 3)
        # Each reply is committed (and delivered) before the next one is made; their sessions at the
        # collector send in that order, although separate connections could overtake each other.
        assert sorted(s.form["Body"] for s in seen) == ["one", "three", "two"]
        assert wait_notification(c, tenant.sid, 14110)["log"] == 1
        assert wait_notification(c, tenant.sid, 12200)["log"] == 1
        # Stored in document order too (the list is newest first).
        stored = [m["body"] for m in reversed(inbound_at(c, tenant, collector))]
        assert stored == ["one", "two", "three"]


def test_action_continues_the_session(tenant: Tenant, apps: AppServer) -> None:
    with tenant.client() as c:
        action = apps.new_path("action")

        def on_action(s: Seen) -> Answer:
            if s.form.get("SmsStatus") == "sending" and "MessageStatus" in s.form and "ErrorCode" not in s.form:
                return Answer(twiml("from the action"))
            return Answer("", 204, "text/plain")  # the asynchronous status callbacks

        apps.route(action, on_action, token=tenant.token)
        doc = f"<Response><Message action=\"{action[1:]}\">first</Message><Message>unreachable</Message></Response>"
        a, _ = app_number(c, tenant, apps, Answer(doc), "with-action")
        sender = unique_number()
        add_number(c, tenant.sid, sender)
        send(c, tenant.sid, sender, a, "begin")
        requested = apps.wait(action)[0]
        assert requested.signature_valid and requested.form["Body"] == "begin"
        bodies = wait_until(lambda: sorted(m["body"] for m in inbound_at(c, tenant, sender)),
                            lambda b: len(b) >= 2, what="both replies")
        assert bodies == ["first", "from the action"]
        assert not messages(c, tenant.sid, Body="unreachable")


def test_two_apps_answering_each_other_are_capped(tenant: Tenant, apps: AppServer) -> None:
    with tenant.client() as c:
        a, a_path = app_number(c, tenant, apps, Answer(twiml("ping")), "pinger")
        b, b_path = app_number(c, tenant, apps, Answer(twiml("pong")), "ponger")
        send(c, tenant.sid, a, b, "serve")
        note = wait_notification(c, tenant.sid, 14109)
        assert b in note["message_text"] or a in note["message_text"]
        # hop_limit = 4 in the test config: four application runs, then the fifth arrival is not run.
        total = len(apps.requests(a_path)) + len(apps.requests(b_path))
        assert total == 4
        assert len(notifications(c, tenant.sid, ErrorCode="14109")) == 1


def test_opt_out_keywords(tenant: Tenant, apps: AppServer) -> None:
    with tenant.client() as c:
        ours, ours_path = app_number(c, tenant, apps, Answer("<Response/>"), "business")
        user = unique_number()
        add_number(c, tenant.sid, user)

        stop = send(c, tenant.sid, user, ours, "  Stop ").json()
        wait_status(c, tenant.sid, stop["sid"], {"delivered"})
        seen = apps.wait(ours_path)[0]
        assert seen.form["OptOutType"] == "STOP"  # the app still sees it, as at Twilio
        confirm = wait_until(lambda: inbound_at(c, tenant, user), bool, what="STOP confirmation")
        assert "unsubscribed" in confirm[0]["body"]

        refused = send(c, tenant.sid, ours, user, "buy now")
        assert refused.status_code == 400 and refused.json()["code"] == 21610

        send(c, tenant.sid, user, ours, "help")
        wait_until(lambda: [m for m in inbound_at(c, tenant, user) if m["body"] == "Test help: reply STOP to stop."],
                   bool, what="HELP answer")

        start = send(c, tenant.sid, user, ours, "START").json()
        wait_status(c, tenant.sid, start["sid"], {"delivered"})
        wait_until(lambda: [m for m in inbound_at(c, tenant, user) if "re-subscribed" in m["body"]], bool,
                   what="START confirmation")
        again = send(c, tenant.sid, ours, user, "welcome back")
        assert again.status_code == 200, again.text
        wait_status(c, tenant.sid, again.json()["sid"], {"delivered"})
        # "stop" inside a sentence is not a keyword.
        send(c, tenant.sid, user, ours, "please don't stop")
        assert send(c, tenant.sid, ours, user, "still subscribed").status_code == 200


def test_email_verb(tenant: Tenant, apps: AppServer, smtp_sink: SmtpSink) -> None:
    with tenant.client() as c:
        doc = ("<Response><Email to=\"ops@example.com\" from=\"app@example.com\" subject=\"New SMS\">"
               "Someone wrote in</Email><Email>missing addresses</Email><Sms>noted</Sms></Response>")
        a, _ = app_number(c, tenant, apps, Answer(doc), "email")
        sender = unique_number()
        add_number(c, tenant.sid, sender)
        send(c, tenant.sid, sender, a, "hello")
        mail = smtp_sink.wait_for(lambda m: "ops@example.com" in m.rcpt_tos)[0]
        assert mail.message["Subject"] == "New SMS" and "Someone wrote in" in mail.message.get_content()
        wait_until(lambda: inbound_at(c, tenant, sender), bool, what="reply after the emails")
        assert wait_notification(c, tenant.sid, 12200)["log"] == 1


def test_sms_application_sid_and_redirect_limit(tenant: Tenant, apps: AppServer) -> None:
    """A number bound to an Application runs its RcmlUrl; a document that keeps redirecting to itself
    is stopped after [sms] max_documents (6 in the test config) with 14106."""
    with tenant.client() as c:
        loop_path = apps.new_path("loop")
        loop_url = apps.route(loop_path, Answer(f"<Response><Redirect>{loop_path}</Redirect></Response>"),
                              token=tenant.token)
        r = c.post(f"/Accounts/{tenant.sid}/Applications.json", data={"FriendlyName": "looper", "RcmlUrl": loop_url})
        assert r.status_code == 200, r.text
        number = unique_number()
        add_number(c, tenant.sid, number, SmsApplicationSid=r.json()["sid"], SmsUrl=apps.url("/not-this-one"))
        sender = unique_number()
        add_number(c, tenant.sid, sender)
        send(c, tenant.sid, sender, number, "round and round")
        note = wait_notification(c, tenant.sid, 14106)
        assert loop_path in note["request_url"]
        assert len(apps.requests(loop_path)) == 6 and not apps.requests("/not-this-one")


@pytest.mark.parametrize(
    ("doc", "code", "log", "sent"),
    [
        ('<Response><Message to="not a number">x</Message><Message>after</Message></Response>', 14101, 0, False),
        ('<Response><Message from="bad sender!!">x</Message></Response>', 14102, 0, False),
        ('<Response><Message action="next" method="PUT">with a bad method</Message></Response>', 14104, 1, True),
        ('<Response><Redirect method="DELETE">gone</Redirect></Response>', 13710, 1, False),
        ('<Response><Redirect>http://[bad</Redirect></Response>', 11100, 0, False),
    ],
)
def test_attribute_problems_are_notified(tenant: Tenant, apps: AppServer, doc: str, code: int, log: int,
                                         sent: bool) -> None:
    with tenant.client() as c:
        a, a_path = app_number(c, tenant, apps, Answer(doc), "attrs")
        apps.route(a_path.rsplit("/", 1)[0] + "/next", Answer("<Response/>"), token=tenant.token)
        sender = unique_number()
        add_number(c, tenant.sid, sender)
        send(c, tenant.sid, sender, a, "go")
        note = wait_notification(c, tenant.sid, code)
        assert note["log"] == log and note["request_url"] == apps.url(a_path)
        if sent:
            wait_until(lambda: inbound_at(c, tenant, sender), bool, what="the reply despite the warning")
        else:
            assert not [m for m in messages(c, tenant.sid) if m["direction"] == "outbound-reply"]
