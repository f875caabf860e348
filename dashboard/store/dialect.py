"""The modules' DuckDB SQL, translated for PostgreSQL.

The modules keep one body of queries, written for DuckDB. sqlglot (a well-kept SQL
transpiler) turns each statement into PostgreSQL: types, casts, ``list()`` aggregates,
``strftime`` formats, integer division, NULL ordering, ``SEMI JOIN`` and ``ANTI JOIN``. The few constructs it
leaves alone are rewritten here, on its syntax tree:

* parameters: DuckDB's ``?`` and ``$name`` become PostgreSQL's ``$1 ... $n``;
* ``GROUP BY ALL`` lists the columns it means; ``len`` of a list is ``cardinality``;
  ``first`` over a window is ``first_value``; ``arg_min``, ``list_intersect`` and ``hash``
  get their PostgreSQL equivalents;
* ``CREATE OR REPLACE TEMP TABLE`` drops and creates; ``SEMI``/``ANTI JOIN ... USING`` joins ON;
* ``* EXCLUDE (...)`` of a store table or a registered one lists the other columns;
* ``read_parquet('glob')`` and tables registered from Arrow become temporary tables (loaded
  by COPY, see ``postgres``), or, when small, an ``unnest`` of array parameters.

Translations are cached per statement text.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

# A parameter of a translated statement: ("pos", index) for DuckDB's ?, ("name", key) for
# $key, ("inline", table, column) for a column of a small registered table.
ParamRef = tuple[str, ...] | tuple[str, int]


class UntranslatableSql(ValueError):
    """A statement uses DuckDB SQL that has no PostgreSQL translation here."""


@dataclass(frozen=True, slots=True)
class Statement:
    text: str  # PostgreSQL, parameters as $1 ... $n
    params: tuple[ParamRef, ...]  # what $1 ... $n are
    parquet: tuple[tuple[str, str], ...] = ()  # (glob, temporary table) to load before running


# Small registered tables read as literal arrays: table -> ((column, PostgreSQL type), ...)
Inline = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]

_POS = "__pos"


def _mark_positional(sql: str) -> str:
    """DuckDB's ``?`` as named placeholders sqlglot parses everywhere (``?::VARCHAR[]``)."""
    out: list[str] = []
    i, n, count = 0, len(sql), 0
    while i < n:
        ch = sql[i]
        if ch in "'\"":  # a string or a quoted name: copied as it is
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i:j + 1])
            i = j + 1
            continue
        if sql.startswith("--", i):
            j = sql.find("\n", i)
            j = n if j < 0 else j
            out.append(sql[i:j])
            i = j
            continue
        if ch == "?":
            out.append(f"${_POS}{count}")
            count += 1
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _parquet_table(glob: str) -> str:
    return "_parquet_" + hashlib.blake2b(glob.encode(), digest_size=6).hexdigest()


def _is_list(node: exp.Expression) -> bool:
    if isinstance(node, exp.Cast):
        return node.to.is_type(exp.DataType.Type.ARRAY)
    if isinstance(node, exp.Anonymous):
        return node.name.lower() in {"list_intersect", "list_filter", "list_distinct"}
    return isinstance(node, (exp.Array, exp.ArrayAgg, exp.ArrayIntersect))


# DuckDB's arg_min/arg_max skip rows where either value is NULL; of tied rows they keep the first
# they meet, which for rows stored in order is the smallest value of the first argument
_ARG_MIN = sqlglot.parse_one(
    "(ARRAY_AGG(__a ORDER BY __b, __a) FILTER (WHERE __a IS NOT NULL AND __b IS NOT NULL))[1]",
    read="postgres")
_ARG_MAX = sqlglot.parse_one(
    "(ARRAY_AGG(__a ORDER BY __b DESC, __a) FILTER (WHERE __a IS NOT NULL AND __b IS NOT NULL))[1]",
    read="postgres")
# min_by(a, b, n): the n values of a with the smallest b, in order (b a struct: by its fields)
_MIN_BY_N = sqlglot.parse_one("(ARRAY_AGG(__a ORDER BY __b) FILTER (WHERE __a IS NOT NULL))[1:__n]",
                              read="postgres")
_CONTAINS = sqlglot.parse_one("(STRPOS(__a, __b) > 0)", read="postgres")
_REGEXP_EXTRACT = sqlglot.parse_one("COALESCE((REGEXP_MATCH(__a, '(' || __b || ')'))[__n], '')",
                                     read="postgres")
_HASH = sqlglot.parse_one("(HASHTEXT(__a)::BIGINT & 2147483647)", read="postgres")
_FINITE = sqlglot.parse_one("(__a NOT IN (CAST('NaN' AS FLOAT8), CAST('Infinity' AS FLOAT8), "
                            "CAST('-Infinity' AS FLOAT8)))", read="postgres")
_ISNAN = sqlglot.parse_one("(__a = CAST('NaN' AS FLOAT8))", read="postgres")
_ISINF = sqlglot.parse_one("(__a IN (CAST('Infinity' AS FLOAT8), CAST('-Infinity' AS FLOAT8)))",
                           read="postgres")
# list_intersect: the distinct elements of a also in b (a row-wise subquery, no set operation)
_INTERSECT = sqlglot.parse_one("ARRAY(SELECT DISTINCT x FROM UNNEST(__a) AS _i(x) WHERE x = ANY(__b))",
                               read="postgres")
_INTERSECT_COUNT = sqlglot.parse_one(
    "(SELECT COUNT(DISTINCT x) FROM UNNEST(__a) AS _i(x) WHERE x = ANY(__b))", read="postgres")


def _fill(template: exp.Expression, **args: exp.Expression) -> exp.Expression:
    out = template.copy()
    for col in list(out.find_all(exp.Column)):
        if col.name.startswith("__") and col.name[2:] in args:
            col.replace(args[col.name[2:]].copy())
    return out


def _min_by_n(node: exp.ArgMin) -> exp.Expression:
    out = _fill(_MIN_BY_N, a=node.this, n=node.args["count"])
    b = node.expression
    keys = [e.expression if isinstance(e, exp.PropertyEQ) else e for e in b.expressions] \
        if isinstance(b, exp.Struct) else [b]
    order = out.find(exp.Order)
    assert order is not None
    order.set("expressions", [exp.Ordered(this=k.copy(), nulls_first=False) for k in keys])
    return out


def _unnested(node: exp.In) -> exp.Expression | None:
    """The list of ``x IN (SELECT unnest(list))`` (a parameter or literal list), else None."""
    sub = node.args.get("query")
    select = sub.this if isinstance(sub, exp.Subquery) else None
    if (not isinstance(select, exp.Select) or len(select.expressions) != 1 or select.args.get("from_")
            or select.args.get("where") or not isinstance(select.expressions[0], (exp.Explode, exp.Unnest))):
        return None
    arg = select.expressions[0].this
    inner = arg.this if isinstance(arg, exp.Cast) else arg
    return arg if isinstance(inner, (exp.Placeholder, exp.Array, exp.Literal)) else None


def _rewrite(node: exp.Expression) -> exp.Expression:
    """One node's PostgreSQL form (applied bottom-up)."""
    if isinstance(node, exp.Length) and node.this.meta.get("intersect"):  # len(list_intersect(a, b))
        a, b = node.this.meta["intersect"]
        return _fill(_INTERSECT_COUNT, a=a, b=b)
    if isinstance(node, exp.Length) and _is_list(node.this):
        return exp.Anonymous(this="CARDINALITY", expressions=[node.this])
    if isinstance(node, exp.Window) and isinstance(node.this, exp.First):
        node.set("this", exp.FirstValue(this=node.this.this))
        return node
    if isinstance(node, exp.In) and _unnested(node):  # x IN (SELECT unnest(list)): x = ANY(list), which
        return exp.EQ(this=node.this, expression=exp.Any(this=exp.Paren(this=_unnested(node))))  # indexed
    if isinstance(node, exp.ArrayOverlaps) and isinstance(node.this, exp.Array) and len(node.this.expressions) == 1:
        # list_has_any([x], list), DuckDB's in-scan form of x IN list: x = ANY(list) too
        return exp.EQ(this=node.this.expressions[0], expression=exp.Any(this=exp.Paren(this=node.expression)))
    if isinstance(node, exp.Array) and not node.expressions:  # [] : an untyped '{}' takes its context's type
        return exp.Literal.string("{}")
    if isinstance(node, exp.ArgMin) and node.args.get("count") is not None:
        return _min_by_n(node)
    if isinstance(node, (exp.ArgMin, exp.ArgMax)):
        out = _fill(_ARG_MIN if isinstance(node, exp.ArgMin) else _ARG_MAX, a=node.this, b=node.expression)
        out.meta["arg_agg"] = True
        return out
    if isinstance(node, exp.Filter) and node.this.meta.get("arg_agg"):  # arg_max(a, b) FILTER (WHERE c)
        inner = node.this.find(exp.Filter)
        assert inner is not None
        cond = exp.and_(node.expression.this.copy(), inner.expression.this.copy())
        inner.set("expression", exp.Where(this=cond))
        return node.this
    if isinstance(node, exp.Bracket) and not isinstance(node.this, (exp.Column, exp.Paren, exp.Identifier)):
        node.set("this", exp.Paren(this=node.this))  # PostgreSQL subscripts only a name or (expression)
        return node
    if isinstance(node, exp.RegexpExtract):  # DuckDB: the match (or a group of it), '' when none
        group = node.args.get("group")
        if group is not None and not (isinstance(group, exp.Literal) and not group.is_string):
            raise UntranslatableSql("regexp_extract with a group that is not a number")
        return _fill(_REGEXP_EXTRACT, a=node.this, b=node.expression,
                     n=exp.Literal.number(int(group.this if group is not None else 0)))  # (0-based here)
    if isinstance(node, exp.Contains):
        return _fill(_CONTAINS, a=node.this, b=node.expression)
    if isinstance(node, exp.IsNan):
        return _fill(_ISNAN, a=node.this)
    if isinstance(node, exp.IsInf):
        return _fill(_ISINF, a=node.this)
    if isinstance(node, exp.Anonymous):
        name = node.name.lower()
        if name == "list_position" and len(node.expressions) == 2:
            return exp.Anonymous(this="ARRAY_POSITION", expressions=node.expressions)
        if name == "isfinite" and len(node.expressions) == 1:
            return _fill(_FINITE, a=node.expressions[0])
        if name == "hash" and len(node.expressions) == 1:
            return _fill(_HASH, a=node.expressions[0])
        if name == "list_intersect" and len(node.expressions) == 2:
            out = _fill(_INTERSECT, a=node.expressions[0], b=node.expressions[1])
            out.meta["intersect"] = (node.expressions[0], node.expressions[1])
            return out
        if name in {"struct_pack", "list_transform", "list_filter"}:
            raise UntranslatableSql(f"{name}() has no PostgreSQL translation")
    if isinstance(node, exp.ArrayIntersect) and len(node.expressions) == 2:
        out = _fill(_INTERSECT, a=node.expressions[0], b=node.expressions[1])
        out.meta["intersect"] = (node.expressions[0], node.expressions[1])
        return out
    if isinstance(node, exp.Join) and node.kind in ("SEMI", "ANTI") and node.args.get("using"):
        return _using_as_on(node)
    if isinstance(node, exp.Group) and node.args.get("all"):
        select = node.parent
        if not isinstance(select, exp.Select):
            raise UntranslatableSql("GROUP BY ALL outside a SELECT")
        keys = [exp.Literal.number(i + 1) for i, e in enumerate(select.expressions)
                if not e.find(exp.AggFunc) and not e.find(exp.Window)]
        return exp.Group(expressions=keys)
    return node


def _using_as_on(join: exp.Join) -> exp.Join:
    """``a SEMI/ANTI JOIN b USING (k)`` as ``... ON a.k = b.k`` (which sqlglot then writes as
    ``[NOT] EXISTS``): the left side is the query's FROM, a table or a named subquery."""
    select = join.parent
    source = select.args.get("from_") if isinstance(select, exp.Select) else None
    left = source.this if source is not None else None
    left_name = left.alias_or_name if isinstance(left, (exp.Table, exp.Subquery)) else ""
    right_name = join.this.alias_or_name if isinstance(join.this, (exp.Table, exp.Subquery)) else ""
    if not left_name or not right_name or left_name == right_name:
        raise UntranslatableSql(f"{join.kind} JOIN ... USING here: name both sides (or join ON)")
    on = exp.and_(*(exp.EQ(this=exp.column(k.name, table=left_name), expression=exp.column(k.name, table=right_name))
                    for k in join.args["using"]))
    join.set("using", None)
    join.set("on", on)
    return join


# Columns of the tables a statement may name (store tables and registered ones), for
# ``* EXCLUDE (...)``: table -> column names in order
Columns = tuple[tuple[str, tuple[str, ...]], ...]


@functools.lru_cache(maxsize=1)
def store_columns() -> Columns:
    """The store's tables and their columns, from its DuckDB schema."""
    from dashboard.store.duckdb import SCHEMA

    out = []
    for tree in sqlglot.parse(SCHEMA, read="duckdb"):
        if isinstance(tree, exp.Create) and tree.kind == "TABLE" and isinstance(tree.this, exp.Schema):
            out.append((tree.this.this.name, tuple(c.name for c in tree.this.expressions
                                                    if isinstance(c, exp.ColumnDef))))
    return tuple(out)


def _expand_excludes(tree: exp.Expression, known: dict[str, tuple[str, ...]]) -> None:
    """``SELECT * EXCLUDE (a)`` (or ``t.* EXCLUDE (a)``) as the list of the other columns, where
    the star reads one table whose columns are known."""
    shadowed = _cte_names(tree)
    for star in list(tree.find_all(exp.Star)):
        excluded = star.args.get("except_")
        if not excluded:
            continue
        node = star.parent if isinstance(star.parent, exp.Column) else star
        qualifier = node.table if isinstance(node, exp.Column) else ""
        select = node.parent
        source = select.args.get("from_") if isinstance(select, exp.Select) else None
        if source is None or node not in select.expressions:
            raise UntranslatableSql("* EXCLUDE outside a SELECT's list")
        sources = [source.this, *(j.this for j in select.args.get("joins") or [])]
        if qualifier:
            sources = [t for t in sources if t.alias_or_name == qualifier]
        table = sources[0] if len(sources) == 1 else None
        if (not isinstance(table, exp.Table) or table.name in shadowed or table.name not in known):
            raise UntranslatableSql("* EXCLUDE here: name the columns (only a store or registered table's "
                                    "are known)")
        drop = {c.name for c in excluded}
        columns = [exp.column(c, table=qualifier or None) for c in known[table.name] if c not in drop]
        i = select.expressions.index(node)
        select.set("expressions", [*select.expressions[:i], *columns, *select.expressions[i + 1:]])


def _name_subqueries(tree: exp.Expression) -> None:
    """PostgreSQL before 16 wants every subquery in FROM named."""
    for i, sub in enumerate(tree.find_all(exp.Subquery)):
        if not sub.alias and isinstance(sub.parent, (exp.From, exp.Join)):
            sub.set("alias", exp.TableAlias(this=exp.to_identifier(f"_sub{i}")))


def _cte_names(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name for cte in tree.find_all(exp.CTE)}


def _inline_tables(tree: exp.Expression, inline: dict[str, tuple[tuple[str, str], ...]]) -> None:
    """Registered tables read from literal arrays: ``unnest($a::T[], $b::U[]) AS t(a, b)``."""
    if not inline:
        return
    shadowed = _cte_names(tree)
    for table in list(tree.find_all(exp.Table)):
        name = table.name
        if name not in inline or name in shadowed or table.args.get("db") or not isinstance(table.this,
                                                                                             exp.Identifier):
            continue
        columns = inline[name]
        arrays = ", ".join(f"CAST(${_inline_key(name, c)} AS {t}[])" for c, t in columns)
        alias = table.alias or name
        names = ", ".join(c for c, _ in columns)
        sub = sqlglot.parse_one(
            f"SELECT * FROM (SELECT * FROM UNNEST({arrays}) AS {alias}({names})) AS {alias}",
            read="duckdb").args["from_"].this
        table.replace(sub)


def _inline_key(table: str, column: str) -> str:
    return f"__inline__{table}__{column}"


def _create_or_replace(stmt: exp.Expression) -> list[exp.Expression]:
    if isinstance(stmt, exp.Create) and stmt.args.get("replace") and stmt.kind == "TABLE":
        stmt.set("replace", False)
        table = stmt.this if isinstance(stmt.this, exp.Table) else stmt.this.find(exp.Table)
        return [sqlglot.parse_one(f"DROP TABLE IF EXISTS {table.sql('postgres')}", read="postgres"), stmt]
    return [stmt]


def null_keys(params: object) -> frozenset[str]:
    """The parameters given as None: translated as NULL literals (PostgreSQL types a parameter
    where it first meets it, and cannot in ``$start IS NULL OR day >= $start``)."""
    if isinstance(params, dict):
        return frozenset(k for k, v in params.items() if v is None)
    if isinstance(params, (list, tuple)):
        return frozenset(f"{_POS}{i}" for i, v in enumerate(params) if v is None)
    return frozenset()


@functools.lru_cache(maxsize=2048)
def translate(sql: str, inline: Inline = (), nulls: frozenset[str] = frozenset(),
              registered: Columns = ()) -> tuple[Statement, ...]:
    """DuckDB SQL (one or more statements) as PostgreSQL statements; parameters named in
    ``nulls`` become NULL; ``registered``: the columns of the tables registered from Python."""
    inlined = dict(inline)
    known = {**dict(store_columns()), **dict(registered)} if "EXCLUDE" in sql.upper() else {}
    try:
        trees = [t for t in sqlglot.parse(_mark_positional(sql), read="duckdb") if t is not None]
    except sqlglot.errors.ParseError as e:
        raise UntranslatableSql(f"cannot parse: {e}") from None
    out: list[Statement] = []
    for tree in trees:
        parquet: list[tuple[str, str]] = []
        for rp in list(tree.find_all(exp.ReadParquet)):
            (glob,) = rp.expressions
            name = _parquet_table(glob.name)
            parquet.append((glob.name, name))
            holder = rp.parent
            if isinstance(holder, exp.Table):
                holder.set("this", exp.to_identifier(name))
            else:
                rp.replace(exp.to_table(name))
        if known:
            _expand_excludes(tree, known)
        _inline_tables(tree, inlined)
        _name_subqueries(tree)
        for node in reversed(list(tree.dfs())):  # children first: a rewrite sees rewritten arguments
            new = _rewrite(node)
            if new is not node:
                node.replace(new)
        for stmt in _create_or_replace(tree):
            refs: list[ParamRef] = []
            numbers: dict[str, int] = {}
            for ph in list(stmt.find_all(exp.Placeholder)):
                key = ph.name
                if not key:
                    raise UntranslatableSql("a ? parameter the translation did not name")
                if key in nulls:
                    ph.replace(exp.Null())
                    continue
                if key not in numbers:
                    numbers[key] = len(refs) + 1
                    if key.startswith(_POS):
                        refs.append(("pos", int(key[len(_POS):])))
                    elif key.startswith("__inline__"):
                        refs.append(("inline", *key[len("__inline__"):].split("__", 1)))
                    else:
                        refs.append(("name", key))
                ph.replace(exp.var(f"${numbers[key]}"))
            out.append(Statement(stmt.sql("postgres"), tuple(refs), tuple(parquet)))
    return tuple(out)


def schema_for_postgres(duckdb_schema: str) -> str:
    """The store's DuckDB ``CREATE TABLE`` statements in PostgreSQL, text compared bytewise
    (``COLLATE "C"``, as DuckDB does) whatever the database's locale."""
    statements = []
    for tree in sqlglot.parse(duckdb_schema, read="duckdb"):
        if tree is None:
            continue
        for col in tree.find_all(exp.ColumnDef):
            kind = col.args.get("kind")
            if kind is not None and (kind.is_type(exp.DataType.Type.VARCHAR, exp.DataType.Type.TEXT)
                                     or (kind.is_type(exp.DataType.Type.ARRAY)
                                         and kind.expressions[0].is_type(exp.DataType.Type.VARCHAR,
                                                                         exp.DataType.Type.TEXT))):
                col.append("constraints", exp.ColumnConstraint(kind=exp.CollateColumnConstraint(
                    this=exp.to_identifier("C", quoted=True))))
        statements.append(tree.sql("postgres"))
    return ";\n".join(statements)
