"""Twilio's own Python SDK against this server, with nothing changed but its base URL.

``twilio.rest.Client`` builds every URL from ``client.api.base_url`` (``Domain.absolute_url``);
pointing that at the server is the only change a Twilio user makes.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from tests.support.server import Server, Tenant
from tests.support.sms_app import add_number, unique_number, wait_status


def twilio_client(server: Server, tenant: Tenant) -> Client:
    client = Client(tenant.sid, tenant.token)
    client.api.base_url = server.base_url  # the only change
    return client


def test_create_fetch_list(server: Server, tenant: Tenant) -> None:
    a, b = unique_number(), unique_number()
    with tenant.client() as c:
        add_number(c, tenant.sid, a)
        add_number(c, tenant.sid, b)
    client = twilio_client(server, tenant)

    msg = client.messages.create(to=b, from_=a, body="Hello from the Twilio SDK ✓")
    assert msg.sid.startswith("SM") and msg.status == "queued" and msg.direction == "outbound-api"
    assert msg.account_sid == tenant.sid and msg.api_version == "2010-04-01"
    assert msg.to == b and msg.from_ == a and msg.body == "Hello from the Twilio SDK ✓"
    assert msg.num_segments == "1" and msg.num_media == "0"
    assert isinstance(msg.date_created, datetime)
    assert msg.uri == f"/2010-04-01/Accounts/{tenant.sid}/Messages/{msg.sid}.json"

    with tenant.client() as c:
        wait_status(c, tenant.sid, msg.sid, {"delivered"})
    fetched = client.messages(msg.sid).fetch()
    assert fetched.sid == msg.sid and fetched.status == "delivered" and isinstance(fetched.date_sent, datetime)

    bulk = [client.messages.create(to=b, from_=a, body=f"bulk {i}") for i in range(4)]
    with tenant.client() as c:
        for m in bulk:
            wait_status(c, tenant.sid, m.sid, {"delivered"})
    # Each delivered message exists twice: outbound-api from a, and inbound at b (also from a).
    listed = client.messages.list(from_=a, page_size=3)  # follows next_page_uri across four pages
    assert len(listed) == 10 and len({m.sid for m in listed}) == 10
    assert sorted(m.direction for m in listed) == ["inbound"] * 5 + ["outbound-api"] * 5
    assert {m.body for m in listed} == {"bulk 0", "bulk 1", "bulk 2", "bulk 3", "Hello from the Twilio SDK ✓"}
    limited = client.messages.list(to=b, limit=3, page_size=2)
    assert len(limited) == 3
    page = client.messages.page(page_size=2)
    assert len(list(page)) == 2 and page.next_page_url is not None
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert len(client.messages.list(from_=a, date_sent_before=tomorrow)) >= 1
    assert client.messages.list(from_=a, date_sent_after=tomorrow) == []


@pytest.mark.parametrize(
    ("kwargs", "code", "status"),
    [
        ({"to": "+15551234567", "from_": "+15550000001", "body": "hi"}, 21606, 400),
        ({"to": "not-a-number", "from_": "{a}", "body": "hi"}, 21211, 400),
        ({"to": "+15551234567", "from_": "{a}", "body": "x" * 1601}, 21617, 400),
        ({"to": "+15551234567", "from_": "{a}", "body": "hi", "media_url": ["https://x.test/a.png"]}, 21620, 400),
    ],
)
def test_errors_raise_twilio_rest_exception(server: Server, tenant: Tenant, kwargs: dict[str, object], code: int,
                                            status: int) -> None:
    a = unique_number()
    with tenant.client() as c:
        add_number(c, tenant.sid, a)
    client = twilio_client(server, tenant)
    args = {k: (v.replace("{a}", a) if isinstance(v, str) else v) for k, v in kwargs.items()}
    with pytest.raises(TwilioRestException) as err:
        client.messages.create(**args)  # type: ignore[arg-type]
    assert err.value.code == code and err.value.status == status


def test_fetch_unknown_and_foreign(server: Server, tenant: Tenant) -> None:
    client = twilio_client(server, tenant)
    with pytest.raises(TwilioRestException) as err:
        client.messages("SM" + "0" * 32).fetch()
    assert err.value.status == 404
    wrong = Client(tenant.sid, "wrong-token")
    wrong.api.base_url = server.base_url
    with pytest.raises(TwilioRestException) as err:
        wrong.messages("SM" + "0" * 32).fetch()
    assert err.value.status == 401
    with pytest.raises(TwilioException, match="401"):  # the SDK's list raises the base exception
        wrong.messages.list(limit=1)
