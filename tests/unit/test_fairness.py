"""Fair claiming between accounts (messaging/store.py ``_Fair``) on an SQLite file, the per-account
limits' defaults, and how a multi-worker server merges its workers' metrics and carriers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from restcomm.config import ConfigError, load_settings
from restcomm.messaging import model as m
from restcomm.messaging import store
from restcomm.messaging.config import load_sms_settings
from restcomm.observability import Registry
from restcomm.store.schema import messages, metadata
from restcomm.web.peers import merge_carriers

THEN = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5)


def _row(account: str, i: int, **kw: object) -> dict[str, object]:
    row = m.new_message(account_sid=account, from_number="+15550000001", to_number="+15550000002", body="x",
                        direction=m.OUTBOUND_API, status=m.QUEUED, num_segments=1, encoding="GSM-7",
                        now=THEN + timedelta(microseconds=i))
    row.update(kw)
    return row


def _claims(tmp_path: Path, rows: list[dict[str, object]], passes: list[int],
            **claim: object) -> list[list[dict[str, object]]]:
    """Each pass claims (and takes) up to its limit, with one cursor, as the dispatcher does."""

    async def run() -> list[list[dict[str, object]]]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'fair.db'}")
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
                await conn.execute(messages.insert(), rows)
            cursor = store.FairCursor()
            out = []
            for limit in passes:
                async with engine.begin() as conn:
                    claimed, _ = await store.claim_outbound(conn, "node", datetime.now(UTC).replace(tzinfo=None),
                                                            15.0, limit, cursor=cursor, **claim)  # type: ignore[arg-type]
                    out.append(claimed)
            return out
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_a_backlog_does_not_hide_another_accounts_message(tmp_path: Path) -> None:
    rows = [_row("ACa", i) for i in range(2000)] + [_row("ACb", 5000)]
    (first,) = _claims(tmp_path, rows, [256])
    accounts = [r["account_sid"] for r in first]
    # B's one message, and A's share (half the claim): A's 128 oldest, in order.
    assert "ACb" in accounts and accounts.count("ACa") == 128
    mine = [r["date_created"] for r in first if r["account_sid"] == "ACa"]
    assert mine == sorted(r["date_created"] for r in rows if r["account_sid"] == "ACa")[:128]


def test_two_backlogs_share_the_claim(tmp_path: Path) -> None:
    rows = [_row("ACa", i) for i in range(1000)] + [_row("ACc", 1000 + i) for i in range(1000)] + [_row("ACb", 9000)]
    first, second = _claims(tmp_path, rows, [256, 256])
    for claim in (first, second):
        counts = {a: sum(1 for r in claim if r["account_sid"] == a) for a in ("ACa", "ACb", "ACc")}
        assert len(claim) >= 171 and abs(counts["ACa"] - counts["ACc"]) <= 1, counts
    assert [r["account_sid"] for r in first].count("ACb") == 1


def test_alone_an_account_gets_the_whole_claim(tmp_path: Path) -> None:
    (first,) = _claims(tmp_path, [_row("ACa", i) for i in range(600)], [256])
    assert len(first) == 256


def test_with_more_accounts_than_the_limit_every_account_gets_its_turn(tmp_path: Path) -> None:
    rows = [_row(f"AC{k}", k * 10 + i) for k in range(7) for i in range(3)]
    passes = _claims(tmp_path, rows, [3, 3, 3])
    served = [sorted({r["account_sid"] for r in p}) for p in passes]
    assert served[0] == ["AC0", "AC1", "AC2"] and served[1] == ["AC3", "AC4", "AC5"]
    assert served[2] == ["AC0", "AC1", "AC6"]  # the last one, then round again to the start
    assert all(len(p) == 3 for p in passes)


def test_not_due_and_not_queued_rows_are_not_claimed(tmp_path: Path) -> None:
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    rows = [_row("ACa", 1, next_attempt_at=later), _row("ACb", 2, status=m.DELIVERED), _row("ACc", 3)]
    (first,) = _claims(tmp_path, rows, [10])
    assert [r["account_sid"] for r in first] == ["ACc"]


def test_per_account_limits_default_to_a_quarter_and_are_checked(tmp_path: Path) -> None:
    sms = load_sms_settings(load_settings(env={"RESTCOMM_DATA_DIR": str(tmp_path)}))
    assert sms.app_account_limit == 16 and sms.callback_account_limit == 64
    config = tmp_path / "c.toml"
    config.write_text("[sms]\napp_concurrency = 2\napp_concurrency_per_account = 0\ncallback_concurrency_per_account = 5\n")
    sms = load_sms_settings(load_settings(env={"RESTCOMM_DATA_DIR": str(tmp_path), "RESTCOMM_CONFIG": str(config)}))
    assert sms.app_account_limit == 1 and sms.callback_account_limit == 5
    config.write_text("[sms]\napp_concurrency_per_account = -1\n")
    with pytest.raises(ConfigError, match="app_concurrency_per_account"):
        load_sms_settings(load_settings(env={"RESTCOMM_DATA_DIR": str(tmp_path), "RESTCOMM_CONFIG": str(config)}))


def test_metrics_of_the_workers_are_merged() -> None:
    mine, other = Registry(), Registry()
    for reg, n in ((mine, 3), (other, 4)):
        reg.counter("c_total", "c", ("k",)).labels("x").inc(n)
        reg.gauge("depth", "read from the database").set(n * 10)
        reg.gauge("start", "process start").set(100 + n)
        reg.histogram("h", "h", buckets=(1.0,)).observe(n / 4)
    other.counter("c_total", "c", ("k",)).labels("only-there").inc(1)
    mine.families["depth"].merge = "local"
    mine.families["start"].merge = "min"
    text = mine.exposition([other.snapshot()])
    assert 'c_total{k="x"} 7' in text and 'c_total{k="only-there"} 1' in text
    assert "depth 30" in text and "start 103" in text
    assert 'h_bucket{le="1"} 2' in text and "h_count 2" in text and "h_sum 1.75" in text
    assert 'c_total{k="x"} 3' in mine.exposition()  # the registry itself is untouched


def test_carriers_of_the_workers_are_merged() -> None:
    def part(bound: int, submitted: int) -> dict[str, object]:
        return {"name": "sim", "host": "h", "port": 1, "binds": 1, "bound": bound, "window": 10, "window_in_use": 1,
                "window_size": 10, "queued": 0, "max_tps": 5.0, "tps": 1.0, "submitted": submitted, "errors": 1,
                "error_counts": {"timeouts": 1}, "status": "up" if bound else "down"}

    (both,) = merge_carriers([[part(1, 5)], [part(1, 7)]], {"sim": (2, 10.0)})
    assert (both["binds"], both["bound"], both["status"], both["submitted"]) == (2, 2, "up", 12)
    assert both["window_size"] == 20 and both["max_tps"] == 10.0 and both["error_counts"] == {"timeouts": 2}
    (one,) = merge_carriers([[part(1, 5)]], {"sim": (2, 10.0)})  # the other worker did not answer
    assert (one["bound"], one["status"]) == (1, "degraded")
