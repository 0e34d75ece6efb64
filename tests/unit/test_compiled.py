"""Constant statements (store/compiled.py) on SQLite: the same rows, the same stored values and the
same errors as SQLAlchemy's own execution of the statement."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import bindparam, create_engine, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from restcomm.store import schema as t
from restcomm.store.compiled import Query

NOW = datetime(2026, 12, 3, 18, 0, 0)


@pytest.fixture()
def db(tmp_path: Path):
    engine = create_engine(f"sqlite:///{tmp_path / 'q.db'}")
    t.metadata.create_all(engine)
    conn = engine.connect()
    yield conn, conn.connection.driver_connection, engine.dialect
    conn.close()
    engine.dispose()


def _app(i: int, **extra: object) -> dict[str, object]:
    return {"sid": f"AP{i}", "account_sid": "AC1", "friendly_name": f"app {i}", "api_version": "2012-04-24",
            "date_created": NOW + timedelta(seconds=i, microseconds=i), "date_updated": NOW, **extra}


def test_rows_and_stored_values_match_sqlalchemy(db) -> None:
    conn, raw, dialect = db
    insert_app = Query(insert(t.applications))
    for i in range(5):
        extra = {"voice_caller_id_lookup": True} if i % 2 else {}  # else the column's default (False)
        assert insert_app.sqlite_run(raw, dialect, _app(i, **extra)) == 1
    page = Query(select(t.applications).where(t.applications.c.account_sid == bindparam("account_sid"))
                 .order_by(t.applications.c.date_created.desc()).offset(bindparam("offset")).limit(bindparam("limit")))
    params = {"account_sid": "AC1", "offset": 1, "limit": 3}
    ours = page.sqlite_rows(raw, dialect, params)
    theirs = [dict(r) for r in conn.execute(page.statement, params).mappings()]
    assert ours == theirs and len(ours) == 3
    assert isinstance(ours[0]["date_created"], datetime) and ours[0]["voice_caller_id_lookup"] is True
    assert page.sqlite_rows(raw, dialect, params, first=True) == ours[:1]
    # Stored exactly as SQLAlchemy stores them (dates with microseconds; booleans as 0/1).
    conn.execute(insert(t.applications), _app(9))
    stored = raw.execute("SELECT date_created, voice_caller_id_lookup FROM applications WHERE sid IN ('AP0', 'AP9')"
                         " ORDER BY sid").fetchall()
    assert stored == [("2026-12-03 18:00:00.000000", 0), ("2026-12-03 18:00:09.000009", 0)]


def test_update_delete_count_and_expanding(db) -> None:
    _, raw, dialect = db
    for i in range(3):
        Query(insert(t.applications)).sqlite_run(raw, dialect, _app(i))
    change = Query(update(t.applications).where(t.applications.c.sid == bindparam("where_sid")))
    assert change.sqlite_run(raw, dialect, {"friendly_name": "new", "where_sid": "AP1"}) == 1
    assert change.sqlite_run(raw, dialect, {"kind": "sms", "date_updated": NOW, "where_sid": "nope"}) == 0
    by_sid = Query(select(t.applications).where(t.applications.c.sid == bindparam("sid")))
    assert by_sid.sqlite_rows(raw, dialect, {"sid": "AP1"})[0]["friendly_name"] == "new"
    some = Query(select(t.applications.c.sid).where(t.applications.c.sid.in_(bindparam("sids", expanding=True)))
                 .order_by(t.applications.c.sid))
    assert some.sqlite_rows(raw, dialect, {"sids": ["AP2", "AP0", "x"]}) == [{"sid": "AP0"}, {"sid": "AP2"}]
    assert some.sqlite_rows(raw, dialect, {"sids": []}) == []
    assert Query(delete(t.applications).where(t.applications.c.sid == bindparam("sid"))).sqlite_run(
        raw, dialect, {"sid": "AP0"}) == 1
    count = Query(select(func.count().label("n")).select_from(t.applications))
    assert count.sqlite_rows(raw, dialect, None) == [{"n": 2}]


def test_errors_are_sqlalchemys(db) -> None:
    _, raw, dialect = db
    insert_app = Query(insert(t.applications))
    insert_app.sqlite_run(raw, dialect, _app(1))
    with pytest.raises(IntegrityError):  # the API answers 409 for it
        insert_app.sqlite_run(raw, dialect, _app(1))
    with pytest.raises(Exception, match="required"):
        Query(select(t.applications).where(t.applications.c.sid == bindparam("sid"))).sqlite_rows(raw, dialect, {})
