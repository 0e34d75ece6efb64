"""SQLAlchemy Core statements run straight on asyncpg: the PostgreSQL side of ``store/session.py``.

Through SQLAlchemy's async engine every statement cost a greenlet switch, an execution context,
the compiled-cache lookup with its parameter processing, the adapter's ``prepare`` and a
``CursorResult``; the pool's checkout added a liveness ping (a round trip). Profiled under the
mixed load on PostgreSQL, SQLAlchemy's own frames were ~27 % of a node's CPU beside asyncpg's.

Here a statement is compiled once per shape for the engine's dialect (``postgresql+asyncpg``: ``$n``
parameters with their casts), keyed as SQLAlchemy keys its own cache (the statement's cache key,
the parameter names given, single or many); what is kept per shape is the SQL text, the order of the
parameters, their bind processors, the Python-side column defaults an INSERT or UPDATE fills in
(``insert_prefetch`` / ``update_prefetch``) and the result columns' names. Each execution is one
asyncpg call (its prepared-statement cache: parsed and planned once per connection) that returns
the rows and the command tag together; the result is SQLAlchemy's own ``IteratorResult`` over those
rows (``scalar``, ``first``, ``mappings``, ``all``, ``one``, … as before) with ``rowcount`` taken
from the tag. Expanding parameters (``IN``) are rendered per execution by SQLAlchemy's own
post-compile step.

Errors keep their SQLAlchemy classes, so the handlers' ``except IntegrityError`` (409) is unchanged:
a server error (``asyncpg.PostgresError``) is raised as the ``DBAPIError`` subclass of its SQLSTATE
class with the driver's error as ``orig``; a lost connection's error is raised as it is
(``store.db.database_unavailable`` recognises both: 503).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData

from restcomm.store import trips

# Statements seen recently, by identity (a module's constant statement, or one a handler runs more
# than once): their cache key is computed once. Bounded; the oldest entries go first.
_BY_ID_MAX = 4096


class PgResult(IteratorResult):
    """SQLAlchemy's buffered result over asyncpg's rows, with the command tag's row count."""

    rowcount: int

    def __init__(self, metadata: SimpleResultMetaData, rows: Any, rowcount: int):
        super().__init__(metadata, iter(rows))
        self.rowcount = rowcount


class _Shape:
    """One compiled statement shape (see the module docstring)."""

    __slots__ = ("compiled", "sql", "order", "procs", "prefetch", "meta", "result_procs", "expanding", "rows")

    def __init__(self, compiled: Any, dialect: Any):
        self.compiled = compiled
        self.sql: str = compiled.string
        self.order: tuple[str, ...] = tuple(compiled.positiontup or ())
        procs = compiled._bind_processors
        self.procs = [(i, procs[name]) for i, name in enumerate(self.order) if name in procs]
        self.expanding = bool(compiled.post_compile_params or compiled.literal_execute_params)
        prefetch = []
        if compiled.insert_prefetch or compiled.update_prefetch:
            getter = compiled._within_exec_param_key_getter
        if compiled.insert_prefetch:
            prefetch = [(c, getter(c), c._default_description_tuple, True) for c in compiled.insert_prefetch]
        elif compiled.update_prefetch:
            prefetch = [(c, getter(c), c._onupdate_description_tuple, False) for c in compiled.update_prefetch]
        self.prefetch = prefetch
        columns = compiled._result_columns
        self.meta = SimpleResultMetaData([col[0] for col in columns]) if columns else None
        result_procs = [col[3]._cached_result_processor(dialect, None) for col in columns]
        self.result_procs = result_procs if any(result_procs) else None
        # INSERT/UPDATE/DELETE without RETURNING answer a command tag only.
        self.rows = bool(columns) or not (compiled.isinsert or compiled.isupdate or compiled.isdelete)


class _Defaults:
    """The slice of an execution context a Python-side column default's callable may read."""

    def __init__(self, params: dict[str, Any]):
        self.current_parameters = params
        self.current_column: Any = None

    def get_current_parameters(self, isolate_multiinsert_groups: bool = True) -> dict[str, Any]:
        return self.current_parameters


class Compiler:
    """Compiled shapes for one dialect (one per ``Database``)."""

    def __init__(self, dialect: Any):
        self.dialect = dialect
        self._shapes: dict[Any, _Shape] = {}
        self._by_id: dict[int, tuple[Any, Any]] = {}

    def _cache_key(self, statement: Any) -> Any:
        hit = self._by_id.get(id(statement))
        if hit is not None and hit[0] is statement:
            return hit[1]
        key = statement._generate_cache_key()
        by_id = self._by_id
        if len(by_id) >= _BY_ID_MAX:
            del by_id[next(iter(by_id))]
        by_id[id(statement)] = (statement, key)  # holds the statement: its id is not reused meanwhile
        return key

    def shape(self, statement: Any, keys: tuple[str, ...], many: bool) -> tuple[_Shape, Any]:
        key = self._cache_key(statement)
        if key is None:  # not cacheable: compile every time
            return _Shape(self._compile(statement, keys, many, None), self.dialect), None
        index = (key.key, keys, many)
        shape = self._shapes.get(index)
        if shape is None:
            shape = self._shapes[index] = _Shape(self._compile(statement, keys, many, key), self.dialect)
        return shape, key[1]

    def _compile(self, statement: Any, keys: tuple[str, ...], many: bool, key: Any) -> Any:
        return statement.compile(dialect=self.dialect, column_keys=list(keys), for_executemany=many, cache_key=key)

    def arguments(self, shape: _Shape, extracted: Any, params: dict[str, Any] | None) -> tuple[str, list[Any]]:
        """The SQL text and positional arguments of one execution."""
        compiled = shape.compiled
        values = compiled.construct_params(params, extracted_parameters=extracted, escape_names=False)
        if shape.prefetch:
            context = _Defaults(values)
            for column, name, (arg, is_scalar, is_callable, _sentinel), insert in shape.prefetch:
                if is_scalar:
                    values[name] = arg
                elif is_callable:
                    context.current_column = column
                    values[name] = arg(context)
                else:
                    default = column.default if insert else column.onupdate
                    if default is not None and getattr(default, "is_sequence", False):
                        raise NotImplementedError("sequence defaults are not prefetched here")
        if shape.expanding:
            expanded = compiled._process_parameters_for_postcompile(values)
            procs = expanded.processors
            args = []
            for name in expanded.positiontup:
                value = expanded.parameters[name]
                proc = procs.get(name)
                args.append(proc(value) if proc is not None and value is not None else value)
            return expanded.statement, args
        args = [values[name] for name in shape.order]
        for i, proc in shape.procs:
            if args[i] is not None:
                args[i] = proc(args[i])
        return shape.sql, args


def _rowcount(status: bytes | str | None) -> int:
    if not status:
        return -1
    text = status.decode() if isinstance(status, bytes) else status
    tail = text.rpartition(" ")[2]
    return int(tail) if tail.isdigit() else -1


_GONE = ("ConnectionDoesNotExistError", "ConnectionFailureError", "InternalClientError")
_GONE_TEXT = ("released back to the pool", "connection is closed", "connection was closed")


def _gone(exc: BaseException) -> bool:
    """A driver's error that says the connection is gone (lost, or taken back by the pool when it
    was): raised as a ``ConnectionError``, which ``store.db.database_unavailable`` knows."""
    name = type(exc).__name__
    if name in _GONE:
        return True
    return name == "InterfaceError" and any(t in str(exc) for t in _GONE_TEXT)


def discard(pool: Any, raw: Any) -> Any:
    """Close a connection that must not be used again, then give it back (a coroutine)."""
    try:
        raw.terminate()
    except Exception:  # noqa: S110 - already detached by the pool (it noticed the loss first)
        pass
    return give_back(pool, raw)


def reusable(raw: Any) -> bool:
    """Open, attached to its pool, and outside any transaction."""
    try:
        return not raw.is_closed() and not raw.is_in_transaction()
    except Exception:  # detached by the pool
        return False


async def give_back(pool: Any, raw: Any) -> None:
    try:
        await pool.give_back(raw)
    except Exception:  # noqa: S110 - released already (the pool took it back when it was lost)
        pass


def translate(exc: BaseException, sql: str | None, args: Any) -> BaseException:
    """A server's error as SQLAlchemy would raise it (its class by SQLSTATE, the driver's error as
    ``orig``); anything else (a lost connection, a protocol error) as it is."""
    import asyncpg

    if not isinstance(exc, asyncpg.PostgresError):
        if _gone(exc):
            from restcomm.store.pgpool import DatabaseUnavailable

            lost = DatabaseUnavailable(f"{type(exc).__name__}: {exc}")
            lost.__cause__ = exc
            return lost
        return exc
    state = str(getattr(exc, "sqlstate", "") or "")
    cls: type[sa_exc.DBAPIError]
    if state.startswith("23"):
        cls = sa_exc.IntegrityError
    elif state.startswith("22"):
        cls = sa_exc.DataError
    elif state.startswith("42"):
        cls = sa_exc.ProgrammingError
    elif state[:2] in ("08", "40", "53", "57", "58"):
        cls = sa_exc.OperationalError
    else:
        cls = sa_exc.DBAPIError
    return cls(sql, args, exc)  # type: ignore[arg-type]


class PgConnection:
    """The slice of ``AsyncConnection`` the handlers and the pipeline use, on one asyncpg connection
    (``execute``, ``begin_nested``, ``dialect``). Transactions are the caller's (``begin``/``commit``)."""

    def __init__(self, raw: Any, compiler: Compiler):
        self.raw = raw
        self.compiler = compiler
        self._depth = 0

    @property
    def dialect(self) -> Any:
        return self.compiler.dialect

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if isinstance(parameters, (list, tuple)):
            if len(parameters) > 1:
                return await self._executemany(statement, parameters)
            parameters = parameters[0] if parameters else None
        keys = tuple(sorted(parameters)) if parameters else ()
        compiler = self.compiler
        shape, extracted = compiler.shape(statement, keys, False)
        sql, args = compiler.arguments(shape, extracted, parameters)
        trips.note()
        try:
            rows, status, _ = await self.raw._execute(sql, args, 0, None, return_status=True)
        except Exception as exc:
            raise translate(exc, sql, args) from exc
        if shape.meta is None:
            keys_out = list(rows[0].keys()) if rows else []
            meta = SimpleResultMetaData(keys_out)
        else:
            meta = shape.meta
        if shape.result_procs is not None and rows:
            procs = shape.result_procs
            rows = [tuple(p(v) if p is not None else v for p, v in zip(procs, row, strict=False)) for row in rows]
        count = _rowcount(status)
        if count < 0:
            count = len(rows)
        return PgResult(meta, rows, count)

    async def _executemany(self, statement: Any, parameters: Any) -> Any:
        keys = tuple(sorted(parameters[0]))
        compiler = self.compiler
        shape, extracted = compiler.shape(statement, keys, True)
        if shape.expanding or (shape.meta is not None):
            # RETURNING or IN lists: row by row (not used on hot paths).
            count = 0
            for params in parameters:
                count += max(0, (await self.execute(statement, params)).rowcount)
            return PgResult(SimpleResultMetaData([]), [], count)
        sql = shape.sql
        many = [compiler.arguments(shape, extracted, params)[1] for params in parameters]
        trips.note()
        try:
            await self.raw.executemany(sql, many)
        except Exception as exc:
            raise translate(exc, sql, many[:1]) from exc
        return PgResult(SimpleResultMetaData([]), [], len(many))

    async def run_sql(self, sql: str) -> None:
        """A statement without parameters (BEGIN, COMMIT, SAVEPOINT …): one round trip, simple protocol."""
        trips.note()
        try:
            await self.raw.execute(sql)
        except Exception as exc:
            raise translate(exc, sql, None) from exc

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        self._depth += 1
        name = f"sp{self._depth}"
        await self.run_sql(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            await self.run_sql(f"ROLLBACK TO SAVEPOINT {name}")
            raise
        else:
            await self.run_sql(f"RELEASE SAVEPOINT {name}")
        finally:
            self._depth -= 1
