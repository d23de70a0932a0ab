"""Selects of plain columns, compiled once and run on the session's DB-API cursor.

The hot reads (a summary's counts and aliases, a listing's page, a version's files) are
selects of plain columns built once at import. SQLAlchemy still pays, on every execution,
for work that depends only on the statement: looking up its compiled form, laying out the
parameters, rendering the list parameters into the SQL, setting up the result's metadata
and its rows. Measured on SQLite, a two-row select: 49-55 us through ``Connection.execute``
against 9-10 us here, where the driver itself takes about 8. Here a statement is compiled
once per dialect (a :class:`_Compiled`) and rendered once per length of each list
parameter (a :class:`_Plan`), with SQLAlchemy's public compiler API; an execution only
converts values with the types' own processors and calls the driver.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVarTuple, cast

from sqlalchemy import Select
from sqlalchemy.engine import Dialect, Result
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

__all__ = ["execute_columns"]

_Columns = TypeVarTuple("_Columns")
_Processor = Callable[[Any], Any]
_AnySelect = Select[*tuple[Any, ...]]


def execute_columns(
    db: Session, statement: Select[*_Columns], params: Mapping[str, Any] | None = None
) -> Result[*_Columns]:
    """Run a select of plain columns (no mapped objects) in the session's transaction.

    What the session holds unflushed is flushed first, as ``Session.execute`` would have,
    so the statement sees it. Values come back as ``Connection.execute`` would give them
    (the column types convert them); a driver error is raised as SQLAlchemy's.
    """
    db.flush()
    connection = db.connection()
    given = params or {}
    compiled = _compile(statement, connection.dialect)
    plan = _plan(compiled, tuple(len(given[name]) for name in compiled.lists))
    dbapi_connection = connection.connection
    cursor = dbapi_connection.cursor()
    try:
        parameters = plan.parameters(given)
        cursor.execute(plan.sql, parameters)
        rows: Sequence[Any] = cursor.fetchall()
        if compiled.metadata is None:  # the names SQLAlchemy gives a row's fields: the SQL's
            compiled.metadata = SimpleResultMetaData([entry[0] for entry in cursor.description])
    except connection.dialect.loaded_dbapi.Error as exc:
        if connection.dialect.is_disconnect(exc, dbapi_connection, cursor):
            connection.invalidate(exc)
        raise DBAPIError.instance(
            plan.sql, parameters, exc, connection.dialect.loaded_dbapi.Error
        ) from exc
    finally:
        cursor.close()
    if compiled.converters:
        rows = _converted(rows, compiled.converters)
    return cast("Result[*_Columns]", IteratorResult(compiled.metadata, iter(rows)))


def _converted(
    rows: Sequence[Sequence[Any]], converters: Sequence[tuple[int, _Processor]]
) -> list[tuple[Any, ...]]:
    """The rows with the columns that have a conversion converted (a page's summaries
    convert about a third of their values; the rest are left as the driver gave them)."""
    converted = []
    for row in rows:
        values = list(row)
        for index, convert in converters:
            values[index] = convert(values[index])
        converted.append(tuple(values))
    return converted


class _Slot:
    """Stands for a value while a plan is made: which parameter (and which item of a
    list parameter) goes where in the rendered statement."""

    __slots__ = ("index", "name")

    def __init__(self, name: str, index: int | None = None) -> None:
        self.name = name
        self.index = index


class _Compiled:
    """One statement compiled for one dialect (compiling a select with window functions
    takes 1-2 ms; rendering its list parameters for a length, 0.05 ms), with what
    converts its parameters and its columns."""

    def __init__(self, statement: _AnySelect, dialect: Dialect) -> None:
        self.compiled = statement.compile(dialect=dialect)
        self.positional = self.compiled.positional
        # The caller's parameters are the binds the code named (``bindparam("ids")``); an
        # anonymous one is a literal of the statement, a constant.
        self.named = {name: b for name, b in self.compiled.binds.items() if not b.unique}
        if any(bind.literal_execute for bind in self.named.values()):
            raise ValueError("a parameter rendered into the SQL cannot be planned once")
        self.lists = tuple(name for name, bind in self.named.items() if bind.expanding)
        self.defaults = {
            name: bind.effective_value for name, bind in self.named.items() if not bind.required
        }
        self.bind_processors = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect)
            for name, bind in self.compiled.binds.items()
        }
        self.converters = [
            (index, convert)
            for index, column in enumerate(statement.selected_columns)
            if (convert := column.type.dialect_impl(dialect).result_processor(dialect, None))
        ]
        self.metadata: SimpleResultMetaData | None = None  # from the first execution


@functools.lru_cache(maxsize=256)
def _compile(statement: _AnySelect, dialect: Dialect) -> _Compiled:
    return _Compiled(statement, dialect)


class _Plan:
    """A compiled statement rendered for one length of each list parameter."""

    def __init__(self, compiled: _Compiled, lengths: tuple[int, ...]) -> None:
        self.compiled = compiled
        lists = dict(zip(compiled.lists, lengths, strict=True))
        probe = {
            name: [_Slot(name, i) for i in range(lists[name])] if name in lists else _Slot(name)
            for name in compiled.named
        }
        state = compiled.compiled.construct_expanded_state(probe)
        self.sql = state.statement
        order = state.positiontup if compiled.positional else list(state.parameters)
        assert order is not None
        # Per rendered parameter: its name, then either where its value comes from in the
        # caller's parameters (and the type's conversion), or the constant the statement
        # holds (a literal such as ``status == 'ready'``), already converted.
        self.slots: list[tuple[str, _Slot | None, _Processor | None, Any]] = []
        for name in order:
            value = state.parameters[name]
            if isinstance(value, _Slot):
                self.slots.append((name, value, compiled.bind_processors[value.name], None))
            else:
                convert = compiled.bind_processors[name]
                self.slots.append((name, None, None, convert(value) if convert else value))

    def parameters(self, params: Mapping[str, Any]) -> list[Any] | dict[str, Any]:
        defaults = self.compiled.defaults
        values: list[Any] = []
        for _name, slot, convert, constant in self.slots:
            if slot is None:
                values.append(constant)
                continue
            if slot.index is not None:
                value = params[slot.name][slot.index]
            elif slot.name in params:
                value = params[slot.name]
            elif slot.name in defaults:
                value = defaults[slot.name]
            else:
                raise KeyError(f"no value for the statement's parameter {slot.name!r}")
            values.append(value if convert is None else convert(value))
        if self.compiled.positional:
            return values
        return {slot[0]: value for slot, value in zip(self.slots, values, strict=True)}


@functools.lru_cache(maxsize=1024)
def _plan(compiled: _Compiled, lengths: tuple[int, ...]) -> _Plan:
    return _Plan(compiled, lengths)
