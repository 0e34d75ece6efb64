"""Constant statements, compiled once: the API's hot reads and writes without SQLAlchemy's per-call work.

A ``Query`` wraps a Core statement written once at module level, its varying values as
``bindparam(...)``::

    BY_SID = Query(select(t.clients).where(t.clients.c.sid == bindparam("sid")))
    row = await session.first(BY_SID, {"sid": sid})          # or session.rows(...), session.run(...)

On SQLite the session (``store/session.py``) compiles it once per set of parameter names to SQL
text, the order of its ``?`` parameters, the columns' bind and result processors and the Python-side
column defaults of an INSERT, then runs it straight on the raw sqlite3 connection in the event-loop
thread and returns plain ``dict`` rows. Building a statement, its cache key, the execution context
and SQLAlchemy's ``Row`` objects per call (~45 % of a node's CPU under mixed load) is skipped; what
reaches SQLite is the SQL SQLAlchemy itself compiles for the statement, with the same parameter
values (dates bound in SQLAlchemy's storage format). Errors are raised as SQLAlchemy's exceptions
(``IntegrityError`` …), as from ``execute``.

Any other database runs ``Query.statement`` through the session's ``execute`` (rows are its
``RowMapping``\\ s), so the same handler code serves both.

An expanding parameter (``col.in_(bindparam("names", expanding=True))``, a list) gets one ``?`` per
item, its SQL made once per list length (an empty list matches nothing). Only scalar Python-side
defaults are supported, and no ``NOT IN`` of an expanding parameter; both are refused when the
statement is first compiled.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.sql import sqltypes

from restcomm.store import trips

_REQUIRED = object()
# Compiled forms kept per Query (an UPDATE compiles once per set of changed columns).
MAX_PLANS = 128


class _Plan:
    """One compiled form of a Query (SQLite)."""

    __slots__ = ("sql", "binds", "names", "procs", "expanding", "by_length")

    def __init__(self, sql: str, binds: tuple[tuple[str, Any, Any], ...], names: tuple[str, ...],
                 procs: tuple[tuple[int, Any], ...], expanding: frozenset[str]):
        self.sql = sql
        self.binds = binds  # (parameter name, value when absent or _REQUIRED, bind processor or None)
        self.names = names  # result column keys
        self.procs = procs  # (column index, result processor) for the columns that need one
        self.expanding = expanding  # parameters that are lists (one "?" per item)
        self.by_length: dict[tuple[int, ...], str] = {}  # their SQL by the lists' lengths


class Query:
    """A Core statement built once; see the module docstring."""

    __slots__ = ("statement", "_dml", "_plans")

    def __init__(self, statement: Any):
        self.statement = statement
        # INSERT and UPDATE compile to different SQL for different sets of parameter names.
        self._dml = bool(getattr(statement, "is_insert", False) or getattr(statement, "is_update", False))
        self._plans: dict[Any, _Plan] = {}

    def __repr__(self) -> str:
        return f"Query({self.statement})"

    def _plan(self, dialect: Any, params: Mapping[str, Any]) -> _Plan:
        key = frozenset(params) if self._dml else None
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= MAX_PLANS:  # an UPDATE of arbitrary column sets: bounded, oldest out
                self._plans.pop(next(iter(self._plans)))
            plan = self._plans[key] = _compile(self.statement, dialect, list(params) if self._dml else None)
        return plan

    def sqlite_rows(self, raw: sqlite3.Connection, dialect: Any, params: Mapping[str, Any] | None,
                    first: bool = False) -> list[dict[str, Any]]:
        """The rows (with ``first``: at most the first) as dicts."""
        plan = self._plan(dialect, params or {})
        cursor = _execute(raw, plan, params or {})
        if first:
            one = cursor.fetchone()
            cursor.close()  # the statement is reset at once: no read snapshot left open
            rows = [one] if one is not None else []
        else:
            rows = cursor.fetchall()
        names, procs = plan.names, plan.procs
        if not procs:
            return [dict(zip(names, r, strict=True)) for r in rows]
        out = []
        for r in rows:
            values = list(r)
            for i, proc in procs:
                v = values[i]
                if v is not None:
                    values[i] = proc(v)
            out.append(dict(zip(names, values, strict=True)))
        return out

    def sqlite_run(self, raw: sqlite3.Connection, dialect: Any, params: Mapping[str, Any] | None) -> int:
        """Run a statement that returns no rows; its rowcount."""
        return _execute(raw, self._plan(dialect, params or {}), params or {}).rowcount


def _execute(raw: sqlite3.Connection, plan: _Plan, params: Mapping[str, Any]) -> sqlite3.Cursor:
    args = []
    for name, absent, proc in plan.binds:
        v = params.get(name, absent)
        if v is _REQUIRED:
            raise sa_exc.ArgumentError(f"a value is required for bind parameter {name!r}")
        if name in plan.expanding:
            args.extend(v if proc is None else [proc(x) if x is not None else x for x in v])
            continue
        if proc is not None and v is not None:
            v = proc(v)
        args.append(v)
    sql = plan.sql if not plan.expanding else _expanded(plan, params)
    trips.note()
    try:
        return raw.execute(sql, args)
    except sqlite3.Error as e:
        raise sa_exc.DBAPIError.instance(sql, args, e, sqlite3.Error) from e


def _expanded(plan: _Plan, params: Mapping[str, Any]) -> str:
    lengths = tuple(len(params[name]) for name in sorted(plan.expanding))
    sql = plan.by_length.get(lengths)
    if sql is None:
        sql = plan.sql
        for name, n in zip(sorted(plan.expanding), lengths, strict=True):
            # An empty list: IN (NULL) is never true, as IN of nothing.
            sql = sql.replace(f"__[POSTCOMPILE_{name}]", ", ".join("?" * n) if n else "NULL")
        if len(plan.by_length) < 64:
            plan.by_length[lengths] = sql
    return sql


def _compile(statement: Any, dialect: Any, column_keys: list[str] | None) -> _Plan:
    compiled = statement.compile(dialect=dialect, column_keys=column_keys)
    sql = compiled.string
    expanding = frozenset(name for name, bind in compiled.binds.items() if bind.expanding)
    for name in expanding:
        if f"NOT IN (__[POSTCOMPILE_{name}])" in sql or sql.count(f"__[POSTCOMPILE_{name}]") != 1:
            raise NotImplementedError(f"only IN of an expanding parameter (once) is supported by Query: {sql}")
    processors = compiled._bind_processors
    defaults: dict[str, Any] = {}
    for column in (*getattr(compiled, "insert_prefetch", ()), *getattr(compiled, "update_prefetch", ())):
        default = column.default if column in getattr(compiled, "insert_prefetch", ()) else column.onupdate
        if default is None or not default.is_scalar:
            raise NotImplementedError(f"only scalar Python-side defaults are supported by Query: {column}")
        defaults[column.key] = default.arg
    binds = []
    for name in compiled.positiontup or ():
        if name in defaults:
            absent = defaults[name]
        else:
            bind = compiled.binds[name]
            absent = _REQUIRED if bind.required or bind.callable is not None else bind.effective_value
        binds.append((name, absent, processors.get(name)))
    names = []
    procs = []
    for i, entry in enumerate(compiled._result_columns):
        names.append(entry.keyname)
        type_ = entry.type
        if isinstance(type_, sqltypes.DateTime) and dialect.name == "sqlite":
            proc: Any = datetime.fromisoformat  # SQLAlchemy's storage format is ISO 8601 (C parser)
        else:
            proc = type_._cached_result_processor(dialect, None)
        if proc is not None:
            procs.append((i, proc))
    return _Plan(sql, tuple(binds), tuple(names), tuple(procs), expanding)
