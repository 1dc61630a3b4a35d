"""PostgreSQL through the ADBC driver (libpq, COPY in binary) into Arrow, then into DuckDB.

DuckDB's `postgres` extension downloads at run time. ADBC returns typed Arrow straight from the
server; NUMERIC arrives as text (an opaque Arrow type) and is cast to DOUBLE here. Sessions are
read-only, connecting gives up after `CONNECT_TIMEOUT_S`, and no message ever shows the password.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import duckdb
import pyarrow as pa

from mlwizard.core.ingest.common import check_unique_names, load_arrow, shown
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.hashing import hash_value
from mlwizard.core.sql import quote_ident

CONNECT_TIMEOUT_S = 10
SCHEMES = ("postgresql", "postgres")
# Within one command the pipeline asks for the fingerprint several times in a row; each answer
# is a scan on the server. Answers are reused for this long only.
FINGERPRINT_REUSE_S = 2.0
_fingerprints: dict[tuple[str, str, str], tuple[float, str]] = {}

LIST_TABLES = (
    "SELECT table_schema, table_name FROM information_schema.tables "
    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
)
FIND_TABLE = (
    "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)"
)


def redact(url: str) -> str:
    """The URL with its password (in the user part or a `password=` parameter) masked."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, host = netloc.rsplit("@", 1)
        netloc = f"{user.split(':', 1)[0]}:***@{host}"
    query = urlencode(
        [(k, "***" if k == "password" else v) for k, v in parse_qsl(parts.query)], safe="*"
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _connect_url(url: str) -> str:
    """libpq options we add: a connect timeout, read-only sessions, an application name."""
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    params.setdefault("connect_timeout", str(CONNECT_TIMEOUT_S))
    params.setdefault("application_name", "mlwizard")
    read_only = "-c default_transaction_read_only=on"
    params["options"] = f"{params['options']} {read_only}" if "options" in params else read_only
    query = urlencode(params, quote_via=quote)  # libpq reads %20 as a space, not '+'
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _scrub(text: str, url: str) -> str:
    password = urlsplit(url).password or dict(parse_qsl(urlsplit(url).query)).get("password")
    return text.replace(password, "***") if password else text


def _server_message(exc: BaseException, url: str) -> str:
    """The server's own sentence ("relation x does not exist") from an ADBC error."""
    text = _scrub(str(exc), url)
    found = re.search(r"ERROR:\s+([^\n]+)", text)
    if found:
        return found.group(1).strip()
    text = re.sub(r"^[A-Z_]+: (\[libpq\] )?(Failed to connect: )?", "", text.strip())
    return " ".join(text.split()) or type(exc).__name__


@contextmanager
def _cursor(url: str) -> Iterator[Any]:
    try:
        import adbc_driver_postgresql.dbapi as pg
    except ImportError:
        raise BadInputError(
            "PostgreSQL sources need the adbc-driver-postgresql package: "
            "pip install adbc-driver-postgresql"
        ) from None
    try:
        connection = pg.connect(_connect_url(url))
    except pg.Error as exc:
        raise BadInputError(
            f"{redact(url)}: cannot connect to PostgreSQL ({_server_message(exc, url)}); "
            "check the URL, and that the server runs and accepts this user"
        ) from None
    with connection, connection.cursor() as cursor:
        yield cursor


def _statement(cursor: Any, url: str, table: str, query: str) -> tuple[str, str]:
    import adbc_driver_postgresql.dbapi as pg

    where = redact(url)
    if table and query:
        raise BadInputError(f"{where}: set [data] table or [data] query, not both")
    if query:
        return query.strip().rstrip(";"), f"{where} (query)"
    if not table:
        raise BadInputError(f"{where}: set [data] table (a table or view) or [data] query")
    # "sales.orders" is schema "sales", table "orders" — or a table named "sales.orders".
    spellings = [".".join(quote_ident(part) for part in table.split(".", 1)), quote_ident(table)]
    found = []
    try:
        for qualified in dict.fromkeys(spellings):
            cursor.execute(FIND_TABLE, parameters=(qualified,))
            found = cursor.fetchall()
            if found:
                break
    except pg.Error as exc:
        raise BadInputError(
            f"{where}: cannot look up table '{table}': {_server_message(exc, url)}"
        ) from None
    if not found:
        cursor.execute(LIST_TABLES)
        names = [f"{s}.{t}" if s != "public" else t for s, t in cursor.fetchall()]
        raise BadInputError(
            f"{where}: no table '{table}' (tables: {shown(names) or 'none'}); "
            "set [data] table to one of them"
        )
    schema, name = found[0]
    return f"SELECT * FROM {quote_ident(schema)}.{quote_ident(name)}", f"{where} [table {table}]"


def read_postgres(
    con: duckdb.DuckDBPyConnection, url: str, table: str, query: str
) -> tuple[duckdb.DuckDBPyRelation, str]:
    """The table or query's rows copied into DuckDB, and a label without the password."""
    import adbc_driver_postgresql.dbapi as pg

    with _cursor(url) as cursor:
        statement, label = _statement(cursor, url, table, query)
        try:
            cursor.execute(statement)
            reader = cursor.fetch_record_batch()
            check_unique_names(label, reader.schema.names)
            relation = load_arrow(con, reader, _select(reader.schema))
        except (pg.Error, duckdb.Error) as exc:  # DuckDB re-raises errors met mid-stream
            raise BadInputError(
                f"{label}: the query failed: {_server_message(exc, url)}; fix [data] "
                + ("query" if query else "table")
            ) from None
    if not relation.aggregate("count(*)").fetchall()[0][0]:
        raise BadInputError(f"{label}: no data rows")
    return relation, label


def _select(schema: pa.Schema) -> list[str]:
    """NUMERIC comes as text: read it as DOUBLE, like every other number the model sees."""
    exprs = []
    for field in schema:
        column = quote_ident(field.name)
        pg_type = (field.metadata or {}).get(b"POSTGRESQL:type", b"")
        exprs.append(
            f"TRY_CAST({column} AS DOUBLE) AS {column}" if pg_type == b"numeric" else column
        )
    return exprs


def fingerprint(url: str, table: str, query: str) -> str:
    """A hash of the rows, computed on the server: row count plus the sum of per-row md5s
    (order-independent), so new, changed or deleted rows make a new data version.
    "unavailable" when the server cannot answer: the phase then runs and says why."""
    key = (url, table, query)
    now = time.monotonic()
    cached = _fingerprints.get(key)
    if cached and now - cached[0] < FINGERPRINT_REUSE_S:
        return cached[1]
    try:
        import adbc_driver_postgresql.dbapi as pg
    except ImportError:
        return "unavailable"
    try:
        with _cursor(url) as cursor:
            statement, _ = _statement(cursor, url, table, query)
            cursor.execute(
                "SELECT count(*)::text, coalesce(sum(('x' || substr(md5(q::text), 1, 15))"
                f"::bit(60)::bigint), 0)::text FROM ({statement}) AS q"
            )
            value = "pg-" + hash_value(list(cursor.fetchall()[0]))
    except (BadInputError, pg.Error):  # unreachable, no such table, bad query: the read says so
        return "unavailable"
    _fingerprints[key] = (now, value)
    return value
