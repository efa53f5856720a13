"""Querysets compiled to SQL once, then run again with new values: the participant API's hot path.

Django compiles a queryset to SQL every time it runs one. For the few statements every trial fetch and
answer sends, compiling costs several times the query itself (measured on PostgreSQL: a session looked up
by its token, 0.70 ms through the ORM against 0.12 ms for the same SQL run directly). A prepared query
compiles its queryset once per thread and database connection with stand-in values, remembers where each
value sits among the statement's parameters, and afterwards only puts the new values there. Rows become
model instances the way the ORM makes them (`Model.from_db`, the fields' converters), and statements go
through Django's cursor, so query logging and counting see them as any other.

On PostgreSQL, with DB_PREPARED_STATEMENTS (on with persistent connections), each statement is also
prepared on the server, once per connection (PREPARE, then EXECUTE at every call): for these short
statements parsing and planning were most of the server's work (the token lookup: 0.7 ms of planning
against 0.2 ms of executing).

Values are declared by the model field they are compared with or stored in, and prepared for the database
by that field, as the ORM does. Only values that the ORM passes as parameters can be declared: slicing
bounds are written into the SQL, so a query's limit is one of the `shape` arguments that pick a compiled
statement.
"""

from __future__ import annotations

import hashlib
import inspect
import itertools
import re
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar, cast

from django.conf import settings
from django.db import connections, models
from django.db.models.base import ModelState
from django.db.models.constants import OnConflict
from django.db.models.fields.related_descriptors import ForeignKeyDeferredAttribute
from django.db.models.query import get_related_populators  # type: ignore[attr-defined]  # not in the stubs
from django.db.models.signals import post_init, pre_init
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.subqueries import InsertQuery, UpdateQuery

M = TypeVar("M", bound=models.Model)
Compiled = tuple[SQLCompiler, str, tuple[Any, ...]]


class PreparedQueryError(Exception):
    """A prepared query cannot be compiled as declared (a programming error, found on first use)."""


def _stand_in(field: models.Field[Any, Any], number: int, connection: Any) -> Any:
    """A value of the field's type that no real parameter of the statement will equal."""
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    if isinstance(target, models.UUIDField):
        return uuid.UUID(int=(0x5EED << 112) + number)
    if isinstance(target, models.DateTimeField):
        return datetime(1901, 2, 3, tzinfo=UTC) + timedelta(microseconds=number + 1)
    if isinstance(target, (models.IntegerField, models.AutoField)):
        # At the top of the column's range: Django drops a comparison with a value outside it from the SQL.
        return connection.ops.integer_field_range(target.get_internal_type())[1] - number
    if isinstance(target, models.CharField | models.TextField):
        return f"\x1fprepared parameter {number}"
    raise PreparedQueryError(f"A prepared query cannot take a value for {field!r}.")


@dataclass(frozen=True)
class _Statement:
    connection: Any  # the thread's DatabaseWrapper it was compiled for
    sql: str
    params: tuple[Any, ...]
    slots: tuple[tuple[int, str], ...]  # (position among the parameters, value's name)
    rows: _Rows | None  # for a select: how its rows become instances
    server: _OnServer


@dataclass(frozen=True)
class _Rows:
    """How a select's rows become instances, as the ORM's ModelIterable makes them: read off the compiler once."""

    compiler: SQLCompiler
    model: Any  # the model class (its DoesNotExist is made per model)
    names: list[str]  # the model's columns' attribute names, in the row's order
    start: int
    end: int
    converters: dict[int, Any]
    annotations: dict[str, int]
    related: list[Any]  # the ORM's RelatedPopulators, one per select_related model
    sets_only: bool  # whether the model's rows are made without Model.__init__ (_made)
    # The same for each RelatedPopulator's model, by the populator's id (this statement keeps them alive).
    related_sets_only: dict[int, bool]

    @classmethod
    def of(cls, compiler: SQLCompiler, using: str) -> _Rows:
        assert compiler.klass_info is not None
        select_fields = compiler.klass_info["select_fields"]
        start, end = select_fields[0], select_fields[-1] + 1
        model = compiler.klass_info["model"]
        names = [column[0].target.attname for column in compiler.select[start:end]]
        related = get_related_populators(compiler.klass_info, compiler.select, using)
        related_sets_only = {}
        populators = list(related)
        while populators:
            populator = populators.pop()
            related_sets_only[id(populator)] = _sets_only(populator.model_cls, populator.init_list)
            populators += populator.related_populators
        return cls(
            compiler,
            model,
            names,
            start,
            end,
            compiler.get_converters([column[0] for column in compiler.select[: compiler.col_count]]),
            dict(compiler.annotation_col_map or {}),
            related,
            _sets_only(model, names),
            related_sets_only,
        )

    def instances(self, rows: list[Any], using: str) -> list[Any]:
        """The rows as instances, with their select_related instances and annotations set as attributes.

        Rows that read the same related row share one instance of it (the ORM makes one per row): a session's
        trials read with their session are one session, made once."""
        found = []
        converted = self.compiler.apply_converters(rows, self.converters) if self.converters else rows
        made: dict[tuple[int, Any], Any] = {}
        for row in converted:
            instance = _made(self.model, using, self.names, row[self.start : self.end], self.sets_only)
            for populator in self.related:
                _populate(populator, row, instance, made, self.related_sets_only)
            for name, position in self.annotations.items():
                setattr(instance, name, row[position])
            found.append(instance)
        return found


def _sets_only(model: type[models.Model], names: list[str]) -> bool:
    """Whether Model.__init__, given a row of these columns, would only set each field's attribute to its value:
    every concrete field is read, in the model's order, and none has an attribute that does more with a value
    than store it (a ForeignKey's id clears a cached related instance, which a new instance has none of)."""
    fields = model._meta.concrete_fields
    if names != [field.attname for field in fields]:
        return False
    for name in names:
        attribute = inspect.getattr_static(model, name)
        if hasattr(attribute, "__set__") and not isinstance(attribute, ForeignKeyDeferredAttribute):
            return False
    return True


def _made(model: Any, using: str, names: list[str], values: Any, sets_only: bool) -> Any:
    """model.from_db(using, names, values), without running Model.__init__ where it would only set the values
    (sets_only) and no pre_init or post_init receiver listens: for a row of 20-odd columns, __init__ is most of
    the cost of making the instance, and the participant API makes several per call."""
    if not sets_only or pre_init.has_listeners(model) or post_init.has_listeners(model):
        return model.from_db(using, names, values)
    instance = model.__new__(model)
    instance.__dict__.update(zip(names, values, strict=True))
    state = instance._state = ModelState()
    state.adding, state.db = False, using
    return instance


def _populate(
    populator: Any, row: Any, instance: Any, made: dict[tuple[int, Any], Any], sets_only: dict[int, bool]
) -> None:
    """The ORM's RelatedPopulator.populate, but the related instance made once per related row."""
    reorder = populator.reorder_for_init
    data = reorder(row) if reorder else row[populator.cols_start : populator.cols_end]
    pk = data[populator.pk_idx]
    related = None
    if pk is not None:
        related = made.get((id(populator), pk))
        if related is None:
            related = made[(id(populator), pk)] = _made(
                populator.model_cls, populator.db, populator.init_list, data, sets_only[id(populator)]
            )
            for nested in populator.related_populators:
                _populate(nested, row, related, made, sets_only)
    populator.local_setter(instance, related)
    if related is not None:
        populator.remote_setter(related, instance)


S = TypeVar("S")

_PLACEHOLDER = re.compile(r"%(%|s)")


def _numbered(sql: str) -> str:
    """The statement with the server's $1, $2, ... in place of the driver's %s (a literal %% stays the driver's)."""
    numbers = itertools.count(1)
    return _PLACEHOLDER.sub(lambda found: "%%" if found[1] == "%" else f"${next(numbers)}", sql)


def _prepared_on_server(connection: Any) -> set[str] | None:
    """The names of the statements prepared on the connection's current database session; None where
    statements are not prepared on the server. A new session (a reconnection) has none."""
    if connection.vendor != "postgresql" or not settings.DB_PREPARED_STATEMENTS:
        return None
    raw = connection.connection
    known = connection.__dict__.get("_prepared_on_server")
    if known is None or known[0] is not raw:
        known = connection.__dict__["_prepared_on_server"] = (raw, set())
    return cast(set[str], known[1])


@dataclass(frozen=True)
class _OnServer:
    """A statement as the server prepares it and then runs it, named by its SQL: made once per compiled
    statement, not at every call."""

    name: str
    prepare: str
    execute: str

    @classmethod
    def of(cls, sql: str, n_params: int) -> _OnServer:
        name = "psy_" + hashlib.blake2b(sql.encode(), digest_size=8).hexdigest()
        execute = f"EXECUTE {name} ({', '.join(['%s'] * n_params)})" if n_params else f"EXECUTE {name}"
        return cls(name, f"PREPARE {name} AS {_numbered(sql)}", execute)


def _execute(statement: _Statement | _Insert | _UpdateThenInsert, cursor: Any, params: list[Any]) -> None:
    """Run the statement; where statements are prepared on the server, PREPAREd at its first run on this
    database session, then EXECUTEd with the values."""
    prepared = _prepared_on_server(statement.connection)
    server = statement.server
    if prepared is None:
        cursor.execute(statement.sql, params)
        return
    if server.name not in prepared:
        # Apart from the EXECUTE, so that a failing EXECUTE cannot leave it unknown whether this one ran
        # (a prepared statement outlives a rolled-back transaction).
        cursor.execute(server.prepare)
        prepared.add(server.name)
    cursor.execute(server.execute, params)


def _cached(local: threading.local, using: str, shape: tuple[Hashable, ...], prepare: Callable[[], S]) -> S:
    """The thread's statement for this database and shape, prepared again for a new connection."""
    cache: dict[tuple[str, tuple[Hashable, ...]], Any] = local.__dict__.setdefault("statements", {})
    statement = cache.get((using, shape))
    if statement is None or statement.connection is not connections[using]:
        statement = cache[(using, shape)] = prepare()
    return cast(S, statement)


class _Prepared(ABC):
    """What selects and updates share: compiling with stand-ins and putting values in their places."""

    def __init__(self, fields: Mapping[str, models.Field[Any, Any]]) -> None:
        self.fields = dict(fields)
        self._local = threading.local()

    @abstractmethod
    def _compile(self, stand_ins: dict[str, Any], shape: tuple[Hashable, ...], using: str) -> Compiled:
        """The statement built with the stand-in values: its compiler, SQL and parameters."""

    def _rows(self, compiler: SQLCompiler, using: str) -> _Rows | None:
        """How the statement's rows become instances; None for a statement that returns none."""
        return None

    def _statement(self, using: str, shape: tuple[Hashable, ...]) -> _Statement:
        return _cached(self._local, using, shape, lambda: self._prepare(using, shape))

    def _prepare(self, using: str, shape: tuple[Hashable, ...]) -> _Statement:
        connection = connections[using]
        stand_ins = {
            name: _stand_in(field, number, connection) for number, (name, field) in enumerate(self.fields.items())
        }
        compiler, sql, params = self._compile(stand_ins, shape, using)
        slots = []
        for name, value in stand_ins.items():
            prepared = self.fields[name].get_db_prep_value(value, connection, prepared=False)
            places = [position for position, param in enumerate(params) if param == prepared]
            if not places:
                raise PreparedQueryError(f"The value {name!r} is not a parameter of: {sql}")
            slots += [(place, name) for place in places]
        rows = self._rows(compiler, using)
        return _Statement(connection, sql, tuple(params), tuple(slots), rows, _OnServer.of(sql, len(params)))

    def _params(self, statement: _Statement, values: Mapping[str, Any]) -> list[Any]:
        if values.keys() != self.fields.keys():
            raise PreparedQueryError(f"Expected the values {sorted(self.fields)}, got {sorted(values)}.")
        params = list(statement.params)
        for place, name in statement.slots:
            params[place] = self.fields[name].get_db_prep_value(values[name], statement.connection, prepared=False)
        return params


class PreparedSelect(_Prepared, Generic[M]):
    """A model queryset built by `build(*shape, **stand_ins)`; `.all()` runs it."""

    def __init__(
        self, build: Callable[..., models.QuerySet[M]], **fields: models.Field[Any, Any]
    ) -> None:
        super().__init__(fields)
        self.build = build

    def _compile(self, stand_ins: dict[str, Any], shape: tuple[Hashable, ...], using: str) -> Compiled:
        queryset = self.build(*shape, **stand_ins)
        compiler = queryset.query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        if compiler.klass_info is None:
            raise PreparedQueryError("A prepared select makes model instances (not values() rows).")
        return compiler, sql, tuple(params)

    def _rows(self, compiler: SQLCompiler, using: str) -> _Rows:
        return _Rows.of(compiler, using)

    def all(self, *shape: Hashable, using: str = "default", **values: Any) -> list[M]:
        statement = self._statement(using, shape)
        assert statement.rows is not None
        with statement.connection.cursor() as cursor:
            _execute(statement, cursor, self._params(statement, values))
            rows = cursor.fetchall()
        return statement.rows.instances(rows, using)

    def first(self, *shape: Hashable, using: str = "default", **values: Any) -> M | None:
        found = self.all(*shape, using=using, **values)
        return found[0] if found else None

    def get(self, *shape: Hashable, using: str = "default", **values: Any) -> M:
        """The one row, or the model's DoesNotExist / MultipleObjectsReturned, as QuerySet.get raises."""
        found = self.all(*shape, using=using, **values)
        if len(found) == 1:
            return found[0]
        rows = self._statement(using, shape).rows
        assert rows is not None
        meta = rows.model._meta
        if not found:
            raise rows.model.DoesNotExist(f"{meta.object_name} matching {values} does not exist.")
        raise rows.model.MultipleObjectsReturned(f"{len(found)} {meta.object_name} rows match {values}.")


def writes_in_a_with(using: str = "default") -> bool:
    """Whether the database runs a data-modifying WITH (PostgreSQL does; SQLite does not), which the prepared
    statements that write in the same statement as they read or write elsewhere need."""
    return bool(connections[using].vendor == "postgresql")


def _needs_writes_in_a_with(using: str) -> None:
    if not writes_in_a_with(using):
        raise PreparedQueryError(f"{connections[using].vendor} cannot write in a WITH: check writes_in_a_with().")


class PreparedSelectMarkingFirst(PreparedSelect[M]):
    """A select that also sets the `mark` field of its first row, in `first_by`'s order, to the value named by the
    mark's name, where that row's `only_if` column is set: one statement (a data-modifying WITH) where a read and
    then an update were two, and those two where the database cannot write in a WITH. The rows are as the select
    alone reads them: the first row's mark as it was.

    `mark` is a field of the select's model; `first_by` and `only_if` are fields whose columns the select reads
    (`only_if` may be a select_related model's), and the select is ordered by `first_by` first."""

    def __init__(
        self,
        build: Callable[..., models.QuerySet[M]],
        *,
        mark: models.Field[Any, Any],
        first_by: models.Field[Any, Any],
        only_if: models.Field[Any, Any],
        **fields: models.Field[Any, Any],
    ) -> None:
        super().__init__(build, **fields, **{mark.name: mark})
        self.mark, self.first_by, self.only_if = mark, first_by, only_if
        # Where the database cannot write in a WITH: the select alone, then the first row's update by its key.
        self._apart = PreparedSelect(build, **fields)
        model = mark.model
        self._mark_apart = PreparedUpdate(
            model, lambda pk: model._default_manager.filter(pk=pk), (mark.name,), pk=model._meta.pk
        )

    def all(self, *shape: Hashable, using: str = "default", **values: Any) -> list[M]:
        if writes_in_a_with(using):
            return super().all(*shape, using=using, **values)
        mark = values.pop(self.mark.name)
        found = self._apart.all(*shape, using=using, **values)
        if found and self._holds(found[0]):
            self._mark_apart.run(using=using, pk=found[0].pk, **{self.mark.name: mark})
        return found

    def _holds(self, first: M) -> bool:
        """Whether the row's `only_if` column is set, on the row's own instance or the related one it read."""
        owner: Any = first
        if self.only_if.model is not type(first):
            link = next(f for f in first._meta.fields if f.is_relation and f.related_model is self.only_if.model)
            owner = getattr(first, link.name)
        return getattr(owner, self.only_if.attname) is not None

    def _compile(self, stand_ins: dict[str, Any], shape: tuple[Hashable, ...], using: str) -> Compiled:
        _needs_writes_in_a_with(using)
        connection = connections[using]
        marked = {name: value for name, value in stand_ins.items() if name != self.mark.name}
        compiler, sql, params = super()._compile(marked, shape, using)
        model = self.mark.model._meta
        quote = connection.ops.quote_name
        targets = [column[0].target for column in compiler.select]

        def column(field: models.Field[Any, Any]) -> str:
            if field not in targets:
                raise PreparedQueryError(f"The select reads no column of {field!r}.")
            return quote(f"c{targets.index(field)}")

        names = ", ".join(quote(f"c{number}") for number in range(len(targets)))
        wrapped = (
            f"WITH {quote('found')} ({names}) AS ({sql}), {quote('marked')} AS ("
            f"UPDATE {quote(model.db_table)} SET {quote(self.mark.column)} = %s WHERE {quote(model.pk.column)} = ("
            f"SELECT {column(model.pk)} FROM {quote('found')} WHERE {column(self.only_if)} IS NOT NULL "
            f"ORDER BY {column(self.first_by)} LIMIT 1)) "
            f"SELECT * FROM {quote('found')} ORDER BY {column(self.first_by)}"
        )
        mark = self.mark.get_db_prep_value(stand_ins[self.mark.name], connection, prepared=False)
        return compiler, wrapped, (*params, mark)


class PreparedUpdate(_Prepared):
    """`UPDATE ... SET` the `assign` fields `WHERE` the queryset `build(**stand_ins)`; `.run()` returns the
    number of rows changed."""

    def __init__(
        self,
        model: type[models.Model],
        build: Callable[..., models.QuerySet[Any]],
        assign: tuple[str, ...],
        **fields: models.Field[Any, Any],
    ) -> None:
        assigned = {name: model._meta.get_field(name) for name in assign}
        if not all(isinstance(field, models.Field) for field in assigned.values()):
            raise PreparedQueryError(f"Only a model's own fields can be assigned: {assign}.")
        super().__init__({**fields, **cast(dict[str, models.Field[Any, Any]], assigned)})
        self.build, self.assign = build, assign

    def _compile(self, stand_ins: dict[str, Any], shape: tuple[Hashable, ...], using: str) -> Compiled:
        where = {name: value for name, value in stand_ins.items() if name not in self.assign}
        query = cast(UpdateQuery, self.build(*shape, **where).query.chain(UpdateQuery))
        query.add_update_values({name: stand_ins[name] for name in self.assign})
        compiler = query.get_compiler(using=using)
        sql, params = compiler.as_sql()
        return compiler, sql, tuple(params)

    def run(self, *shape: Hashable, using: str = "default", **values: Any) -> int:
        statement = self._statement(using, shape)
        with statement.connection.cursor() as cursor:
            _execute(statement, cursor, self._params(statement, values))
            return int(cursor.rowcount)


@dataclass(frozen=True)
class _Insert:
    connection: Any
    sql: str
    returns_pk: bool  # INSERT ... RETURNING the primary key (else the backend's last insert id)
    server: _OnServer


class PreparedInsert(Generic[M]):
    """`INSERT` one row of `model`, every concrete field but its automatic primary key, as Model.save does;
    `.create(**values)` returns the saved instance, as `QuerySet.create` does for a model without save()
    overrides or signal receivers (unset fields take their defaults). `.create_unless_conflict(**values)`
    inserts nothing where the row would break a unique constraint (`ON CONFLICT DO NOTHING`, as
    bulk_create's ignore_conflicts) and returns None then: the check and the write in one statement.

    An insert's parameters are its fields' values in order, one each, so nothing needs a stand-in: the first
    row's statement is kept, and later rows only prepare their values, by the fields' own pre_save and
    get_db_prep_save as Model.save does."""

    def __init__(self, model: type[M]) -> None:
        meta = model._meta
        self.model = model
        self.fields = [field for field in meta.local_concrete_fields if field is not meta.auto_field]
        if any(field.generated for field in self.fields):
            raise PreparedQueryError(f"{meta.label} has fields the database fills: save it through the ORM.")
        self._local = threading.local()

    def _prepare(self, instance: M, using: str, ignore_conflicts: bool) -> _Insert:
        connection = connections[using]
        query = InsertQuery(self.model, on_conflict=OnConflict.IGNORE if ignore_conflicts else None)
        query.insert_values(self.fields, [instance])
        compiler = query.get_compiler(using=using)
        returns_pk = bool(connection.features.can_return_columns_from_insert)
        compiler.returning_fields = [self.model._meta.pk] if returns_pk else None
        (sql, params), *more = compiler.as_sql()
        if more or len(params) != len(self.fields):
            raise PreparedQueryError(f"An insert of {len(self.fields)} plain values was expected, not: {sql}")
        return _Insert(connection, sql, returns_pk, _OnServer.of(sql, len(params)))

    def create(self, using: str = "default", **values: Any) -> M:
        instance = self._insert(using, False, values)
        assert instance is not None  # only an insert that ignores conflicts inserts nothing
        return instance

    def create_unless_conflict(self, using: str = "default", **values: Any) -> M | None:
        return self._insert(using, True, values)

    def _insert(self, using: str, ignore_conflicts: bool, values: dict[str, Any]) -> M | None:
        instance = self.model(**values)
        statement = _cached(
            self._local, using, (ignore_conflicts,), lambda: self._prepare(instance, using, ignore_conflicts)
        )
        connection = statement.connection
        meta = self.model._meta
        with connection.cursor() as cursor:
            _execute(statement, cursor, self._params(instance, connection))
            if statement.returns_pk:
                row = cursor.fetchone()  # none where a conflict was ignored
                pk = None if row is None else row[0]
            else:
                inserted = cursor.rowcount != 0
                pk = connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column) if inserted else None
        return None if pk is None else self._saved(instance, pk, using)

    def create_many(self, rows: list[M], using: str = "default") -> None:
        """Insert the unsaved instances, as `bulk_create` does (their primary keys are not read back). On
        PostgreSQL one statement whatever their number, prepared once: `INSERT ... SELECT * FROM UNNEST` of one
        array per column, where the ORM compiles the statement for every call."""
        if not rows:
            return
        if connections[using].vendor != "postgresql":  # UNNEST of one array per column is PostgreSQL's
            self.model._default_manager.using(using).bulk_create(rows)
            return
        statement = _cached(self._local, using, ("many",), lambda: self._prepare_many(using))
        connection = statement.connection
        columns = [list(values) for values in zip(*(self._params(row, connection) for row in rows), strict=True)]
        with connection.cursor() as cursor:
            _execute(statement, cursor, columns)

    def _prepare_many(self, using: str) -> _Insert:
        connection = connections[using]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(field.column) for field in self.fields)
        arrays = ", ".join(f"CAST(%s AS {field.db_type(connection)}[])" for field in self.fields)
        sql = f"INSERT INTO {quote(self.model._meta.db_table)} ({columns}) SELECT * FROM UNNEST({arrays})"
        return _Insert(connection, sql, False, _OnServer.of(sql, len(self.fields)))

    def _params(self, instance: M, connection: Any) -> list[Any]:
        """The row's values as the database takes them, in the fields' order."""
        return [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in self.fields]

    @staticmethod
    def _saved(instance: M, pk: Any, using: str) -> M:
        instance.pk = pk
        instance._state.adding = False
        instance._state.db = using
        return instance


@dataclass(frozen=True)
class _UpdateThenInsert:
    connection: Any
    update: _Statement
    sql: str
    server: _OnServer


class PreparedUpdateThenInsert(Generic[M]):
    """`update`, then `insert` one row only if the update changed a row, in one statement (PostgreSQL's
    data-modifying WITH): the two writes are one, atomic without a transaction, so three round trips
    (BEGIN, the second write, COMMIT) fewer than writing them in one. `.run(where, **values)` returns the
    inserted instance, or None where the update matched nothing and nothing was written.

    The update matches at most one row (by its primary key): one inserted row for each row it changed. The
    inserted values are cast to their columns' types, as the server cannot infer a parameter's type from an
    INSERT ... SELECT as it does from VALUES. Where the row breaks a unique constraint the statement fails
    whole, the update with it (the ORM's IntegrityError)."""

    def __init__(self, update: PreparedUpdate, insert: PreparedInsert[M]) -> None:
        self.update, self.insert = update, insert
        self._local = threading.local()

    def _prepare(self, using: str) -> _UpdateThenInsert:
        connection = connections[using]
        update = self.update._statement(using, ())
        insert = self.insert
        quote = connection.ops.quote_name
        meta = insert.model._meta
        columns = ", ".join(quote(field.column) for field in insert.fields)
        values = ", ".join(f"CAST(%s AS {field.db_type(connection)})" for field in insert.fields)
        sql = (
            f"WITH {quote('updated')} AS ({update.sql} RETURNING 1) "
            f"INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {values} FROM {quote('updated')} "
            f"RETURNING {quote(meta.db_table)}.{quote(meta.pk.column)}"
        )
        return _UpdateThenInsert(connection, update, sql, _OnServer.of(sql, len(update.params) + len(insert.fields)))

    def run(self, where: Mapping[str, Any], using: str = "default", **values: Any) -> M | None:
        _needs_writes_in_a_with(using)
        statement = _cached(self._local, using, (), lambda: self._prepare(using))
        instance = self.insert.model(**values)
        connection = statement.connection
        params = self.update._params(statement.update, where) + self.insert._params(instance, connection)
        with connection.cursor() as cursor:
            _execute(statement, cursor, params)
            row = cursor.fetchone()
        return None if row is None else self.insert._saved(instance, row[0], using)
