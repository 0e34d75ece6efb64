"""Table-driven tests of the SMS pipeline's pure parts, and the group-commit writer on a real SQLite
file (no server)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from restcomm.config import ConfigError, load_settings
from restcomm.messaging import model as m
from restcomm.messaging.config import CarrierRoute, load_sms_settings
from restcomm.messaging.inbound import keyword
from restcomm.messaging.store import blocked_by_opt_out, number_forms
from restcomm.messaging.transports import CarrierMessage, CarrierRouter, SendResult
from restcomm.messaging.validation import Rejected, check_static
from restcomm.messaging.writer import GroupCommitWriter, sqlite_sync_engine
from restcomm.store import db
from restcomm.store.schema import messages

# -- keywords --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ("STOP", "STOP"), (" stop \n", "STOP"), ("Unsubscribe", "STOP"), ("cancel", "STOP"), ("END", "STOP"),
        ("quit", "STOP"), ("StopAll", "STOP"), ("START", "START"), ("unstop", "START"), ("Yes", "START"),
        ("help", "HELP"), ("INFO", "HELP"),
        ("stop it", None), ("please stop", None), ("STOP!", None), ("", None), ("yes please", None),
    ],
)
def test_keywords_match_the_whole_trimmed_body(body: str, word: str | None) -> None:
    assert keyword(body) == word


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frm", "to", "body", "code"),
    [
        ("", "+15551230000", "hi", 21603),
        ("+15551230000", "", "hi", 21604),
        ("+15551230000", "+15551230001", "", 21602),
        ("+15551230000", "hello", "hi", 21211),
        ("+15551230000", "+1", "hi", 21211),
        ("+15551230000", "+1234567890123456", "hi", 21211),  # 16 digits: longer than E.164
        ("+15551230000", "+15551230001", "x" * 1601, 21617),
        ("ACME-CORP!", "+15551230001", "hi", 21212),
        ("TwelveChars1", "+15551230001", "hi", 21212),
    ],
)
def test_static_checks_give_twilio_codes(frm: str, to: str, body: str, code: int) -> None:
    with pytest.raises(Rejected) as err:
        check_static(frm, to, body)
    assert err.value.code == code


@pytest.mark.parametrize(
    ("body", "encoding", "segments"),
    [("hi", "GSM-7", 1), ("x" * 1600, "GSM-7", 11), ("{}" * 40, "GSM-7", 1), ("{}" * 40 + "a", "GSM-7", 2),
     ("日本", "UCS-2", 1),
     ("日" * 67 * 3, "UCS-2", 3)],
)
def test_accepted_messages_carry_encoding_and_segments(body: str, encoding: str, segments: int) -> None:
    out = check_static(" +15551230000 ", "+15551230001", body)
    assert (out.encoding, out.num_segments, out.from_number) == (encoding, segments, "+15551230000")


def test_short_codes_and_sender_ids_are_accepted() -> None:
    assert check_static("ACME", "12345", "hi").to_number == "12345"
    assert check_static("My Shop 24", "+44 7700 900123", "hi").from_number == "My Shop 24"


# -- opt-out timing ----------------------------------------------------------------------------------


def test_opt_out_blocks_messages_created_before_it_but_not_the_confirmation() -> None:
    t0 = datetime(2026, 1, 1, 12, 0, 0)
    opted = {("+15550000001", "+15550000002"): t0}
    older = {"from_number": "15550000001", "to_number": "+15550000002", "date_created": t0 - timedelta(seconds=1)}
    confirmation = {"from_number": "+15550000001", "to_number": "+15550000002", "date_created": t0}
    other = {"from_number": "+15550000003", "to_number": "+15550000002", "date_created": t0 - timedelta(seconds=1)}
    assert blocked_by_opt_out(older, opted)  # "+" or not, the same number
    assert not blocked_by_opt_out(confirmation, opted)
    assert not blocked_by_opt_out(other, opted)


def test_number_forms() -> None:
    assert number_forms("+15105550100") == ["+15105550100", "15105550100"]
    assert number_forms("5105550100") == ["5105550100", "+15105550100", "+5105550100"]


# -- callbacks -------------------------------------------------------------------------------------


def test_callback_params_carry_both_vocabularies_and_a_numeric_error() -> None:
    message = {"sid": "SM1", "account_sid": "AC1", "from_number": "+1", "to_number": "+2", "body": "b",
               "num_segments": 2}
    ok = m.callback_params(message, m.SENT, None)
    assert ok["MessageStatus"] == ok["SmsStatus"] == "sent" and ok["MessageSid"] == ok["SmsSid"] == "SM1"
    assert ok["ApiVersion"] == "2012-04-24" and "ErrorCode" not in ok and ok["NumSegments"] == "2"
    failed = m.callback_params(message, m.FAILED, 30003)
    assert failed["ErrorCode"] == "30003" and failed["ErrorMessage"] == "Unreachable destination handset"


def test_callback_backoff_doubles_up_to_the_cap() -> None:
    sms = load_sms_settings(load_settings(env={}))
    delays = [sms.callback_delay(n) for n in range(1, 12)]
    assert delays[:4] == [1.0, 2.0, 4.0, 8.0] and max(delays) == 300.0


# -- configuration ---------------------------------------------------------------------------------


def test_sms_section(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('[sms]\nhop_limit = 3\nalphanumeric_senders = true\n'
                   '[[sms.routes]]\nprefix = "+44"\ncarrier = "uk"\n[[sms.routes]]\ncarrier = "world"\n')
    sms = load_sms_settings(load_settings(env={"RESTCOMM_CONFIG": str(cfg)}))
    assert sms.hop_limit == 3 and sms.alphanumeric_senders is True
    assert sms.routes == (CarrierRoute("+44", "uk"), CarrierRoute("", "world"))  # longest prefix first
    cfg.write_text("[sms]\nhop_limt = 3\n")
    with pytest.raises(ConfigError, match="hop_limt"):
        load_sms_settings(load_settings(env={"RESTCOMM_CONFIG": str(cfg)}))
    cfg.write_text("[sms]\nalphanumeric_senders = 'yes'\n")
    with pytest.raises(ConfigError):
        load_sms_settings(load_settings(env={"RESTCOMM_CONFIG": str(cfg)}))


# -- carrier routing -------------------------------------------------------------------------------


class FakeTransport:
    def __init__(self, name: str, available: bool = True):
        self.name = name
        self.available = available

    async def send(self, message: CarrierMessage) -> SendResult:
        return SendResult("accepted", ("id-1",))


def test_longest_prefix_wins_with_and_without_plus() -> None:
    router = CarrierRouter()
    router.add_route("", "world")
    router.add_route("+44", "uk")
    router.add_route("+447", "uk-mobile")
    assert router.carrier_for("+447700900123") == "uk-mobile"
    assert router.carrier_for("447700900123") == "uk-mobile"
    assert router.carrier_for("+441234") == "uk"
    assert router.carrier_for("+15551230000") == "world"
    empty = CarrierRouter()
    assert empty.carrier_for("+15551230000") is None


def test_a_carrier_without_bind_is_passed_over() -> None:
    router = CarrierRouter()
    router.register(FakeTransport("primary", available=False), ("+1",))  # type: ignore[arg-type]
    router.register(FakeTransport("backup"), ("",))  # type: ignore[arg-type]
    assert router.carrier_for("+15551230000") == "backup"


# -- the group-commit writer on SQLite ---------------------------------------------------------------


def _row(sid: str) -> dict[str, Any]:
    return m.new_message(account_sid="AC1", from_number="+1", to_number="+2", body="x", direction=m.OUTBOUND_API,
                         status=m.QUEUED, num_segments=1, encoding="GSM-7", now=datetime(2026, 1, 1), sid=sid)


def test_group_commit_batches_and_isolates_failures(tmp_path: Path) -> None:
    async def run() -> None:
        settings = load_settings(env={"RESTCOMM_DATA_DIR": str(tmp_path)})
        engine = db.create_engine(settings)
        await db.upgrade(engine)
        writer = GroupCommitWriter(engine, sync_engine=sqlite_sync_engine(engine, "FULL"))
        await writer.start()

        async def boom(conn: Any) -> None:
            await conn.execute(text("INSERT INTO messages (sid) VALUES ('half')"))  # violates NOT NULLs
            raise AssertionError("unreachable")

        async def count(conn: Any) -> int:
            return len((await conn.execute(select(messages.c.sid))).all())

        # 100 concurrent inserts, one duplicate and one failing job, all in a few commits.
        jobs = [writer.insert((messages, [_row(f"SM{i:032d}")])) for i in range(100)]
        jobs.append(writer.insert((messages, [_row(f"SM{5:032d}")])))  # duplicate key
        jobs.append(writer.run(boom))
        results = await asyncio.gather(*jobs, return_exceptions=True)
        assert all(r is None for r in results[:100])
        assert type(results[100]).__name__ == "IntegrityError"
        assert results[101] is not None and not isinstance(results[101], AssertionError)
        assert writer.batches < 10  # grouped, not one transaction per job
        assert await writer.run(count) == 100  # the failures took nothing else down
        await writer.stop()
        await engine.dispose()

    asyncio.run(run())


def test_after_commit_runs_only_for_what_committed(tmp_path: Path) -> None:
    """Metrics count what is durable: a job's after_commit hooks run once its batch has committed,
    and never for a job that failed (its savepoint rolled back) while the rest of the batch commits."""
    from restcomm.messaging.writer import after_commit

    async def run() -> None:
        settings = load_settings(env={"RESTCOMM_DATA_DIR": str(tmp_path)})
        engine = db.create_engine(settings)
        await db.upgrade(engine)
        writer = GroupCommitWriter(engine, sync_engine=sqlite_sync_engine(engine, "FULL"))
        await writer.start()
        seen: list[str] = []

        async def good(conn: Any) -> None:
            await conn.execute(insert(messages), [_row(f"SM{1:032d}")])
            after_commit(seen.append, "good")
            assert seen == []  # not before the commit

        async def bad(conn: Any) -> None:
            after_commit(seen.append, "bad")
            raise ValueError("rolled back")

        results = await asyncio.gather(writer.run(good), writer.run(bad), return_exceptions=True)
        assert results[0] is None and isinstance(results[1], ValueError)
        assert seen == ["good"]
        after_commit(seen.append, "outside")  # no transaction: at once
        assert seen == ["good", "outside"]
        await writer.stop()
        await engine.dispose()

    asyncio.run(run())
