"""Every kind of source through `sources.open_source`: real files, real DuckDB, a real PostgreSQL.

The PostgreSQL tests use a server that `pg_server.py` starts on 127.0.0.1 for the session.
"""

from __future__ import annotations

import datetime as dt
import gzip
import socket
import sqlite3
import time
import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helpers.frames import synthetic_frame
from helpers.pg_server import PostgresServer
from mlwizard.core import runner, sql
from mlwizard.core.ingest import postgres, sources, sqlite
from mlwizard.core.kernel.config import Config, DataSection, update_config_file
from mlwizard.core.kernel.errors import BadInputError
from mlwizard.core.kernel.hashing import hash_value
from mlwizard.core.kernel.workspace import Workspace


def open_source(root: Path, **data: Any) -> tuple[duckdb.DuckDBPyRelation, str]:
    return sources.open_source(sources.connect(), Workspace(root), Config(data=DataSection(**data)))


def fingerprint(root: Path, **data: Any) -> str:
    return sources.source_fingerprint(Workspace(root), Config(data=DataSection(**data)))


def refused(root: Path, **data: Any) -> str:
    with pytest.raises(BadInputError) as caught:
        open_source(root, **data)
    message = str(caught.value)
    assert "\n" not in message
    return message


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_connections_bound_memory_and_return_what_queries_free() -> None:
    con = sources.connect()
    try:
        setting = "SELECT current_setting(?)"
        limit = con.execute(setting, ["memory_limit"]).fetchone()
        purging = con.execute(setting, ["allocator_background_threads"]).fetchone()
    finally:
        con.close()
    assert limit == ("953.6 MiB",)  # 1 GB, as DuckDB prints it
    assert purging == (True,)


# -- CSV and TSV -------------------------------------------------------------------------------


def test_csv_dialect_quoting_and_header_are_detected(tmp_path: Path) -> None:
    write(tmp_path / "semi.csv", 'name;note;y\n"Smith; J";"said ""hi""\nthen left";1\nLee;ok;0\n')
    relation, label = open_source(tmp_path, source="semi.csv")
    assert label == str(tmp_path / "semi.csv")
    assert relation.columns == ["name", "note", "y"]
    assert relation.order("y DESC").fetchall() == [
        ("Smith; J", 'said "hi"\nthen left', 1),
        ("Lee", "ok", 0),
    ]
    write(tmp_path / "data.tsv", "a\tb\n1\tx\n2\ty\n")
    assert open_source(tmp_path, source="data.tsv")[0].columns == ["a", "b"]


def test_header_names_are_kept_exactly(tmp_path: Path) -> None:
    write(tmp_path / "d.csv", ' lead,trail ,"a,b",select,y\n1,2,3,4,5\n')
    relation, _ = open_source(tmp_path, source="d.csv")
    assert relation.columns == [" lead", "trail ", "a,b", "select", "y"]
    column = sql.quote_ident(" lead")
    assert relation.aggregate(f"sum({column})").fetchall() == [(1,)]


def test_gzipped_csv_and_na_values(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "d.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write("x,y\n1,a\n?,b\n3,c\n")
    relation, _ = open_source(tmp_path, source="d.csv.gz", na_values=("?",))
    assert sources.column_types(relation) == {"x": "BIGINT", "y": "VARCHAR"}
    assert relation.aggregate("count(x), count(*)").fetchall() == [(2, 3)]


def test_text_past_the_sniffed_sample_makes_a_text_column(tmp_path: Path) -> None:
    lines = [f"{i},{i % 2}" for i in range(30_000)]
    lines[25_000] = "unknown,1"
    write(tmp_path / "d.csv", "x,y\n" + "\n".join(lines) + "\n")
    relation, _ = open_source(tmp_path, source="d.csv")
    assert sources.column_types(relation)["x"] == "VARCHAR"
    assert relation.aggregate("count(*)").fetchall() == [(30_000,)]


@pytest.mark.parametrize(
    ("bad_line", "expected"),
    [
        (b"1,2", "line 25002 has 2 fields where the header has 3"),
        (b'1,"open,2', "line 25002 has a quoted value that is never closed"),
        (b"1,caf\xe9,0", "not UTF-8 text (invalid bytes on line 25002)"),
    ],
)
def test_errors_past_the_sniffed_sample_name_their_line(
    tmp_path: Path, bad_line: bytes, expected: str
) -> None:
    lines = [b'%d,"v%d",%d' % (i, i, i % 2) for i in range(30_000)]
    lines[25_000] = bad_line
    (tmp_path / "d.csv").write_bytes(b"x,v,y\n" + b"\n".join(lines) + b"\n")
    message = refused(tmp_path, source="d.csv")
    assert message.startswith(str(tmp_path / "d.csv")) and expected in message


def test_utf16_and_names_differing_in_case_are_refused(tmp_path: Path) -> None:
    (tmp_path / "u16.csv").write_bytes("x,y\n1,2\n".encode("utf-16"))
    assert "UTF-16 text" in refused(tmp_path, source="u16.csv")
    write(tmp_path / "case.csv", "Age,age,y\n1,2,3\n")
    assert "'Age' and 'age'" in refused(tmp_path, source="case.csv")


# -- Parquet, globs, JSON ----------------------------------------------------------------------


def test_parquet_glob_reads_every_file_and_its_fingerprint_tracks_them(tmp_path: Path) -> None:
    parts = tmp_path / "data"
    parts.mkdir()
    for index in range(2):
        pq.write_table(
            pa.table({"x": [index, index], "y": ["a", "b"]}), parts / f"p{index}.parquet"
        )
    relation, label = open_source(tmp_path, source="data/*.parquet")
    assert label == str(tmp_path / "data/*.parquet")
    assert relation.aggregate("count(*), sum(x)").fetchall() == [(4, 2)]

    ws = Workspace(tmp_path)
    expected = hash_value(
        [[f"data/p{i}.parquet", ws.file_hash(parts / f"p{i}.parquet")] for i in range(2)]
    )
    assert fingerprint(tmp_path, source="data/*.parquet") == expected
    pq.write_table(pa.table({"x": [5], "y": ["c"]}), parts / "p2.parquet")
    assert fingerprint(tmp_path, source="data/*.parquet") != expected
    assert open_source(tmp_path, source="data/*.parquet")[0].aggregate("count(*)").fetchall() == [
        (5,)
    ]


def test_a_glob_names_the_damaged_file(tmp_path: Path) -> None:
    pq.write_table(pa.table({"x": [1]}), tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_bytes((tmp_path / "a.parquet").read_bytes()[:20])
    message = refused(tmp_path, source="*.parquet")
    assert message.startswith(str(tmp_path / "b.parquet")) and "truncated" in message


def test_glob_of_csv_files_with_different_headers_aligns_by_name(tmp_path: Path) -> None:
    write(tmp_path / "in" / "2024.csv", "x,y\n1,a\n")
    write(tmp_path / "in" / "2025.csv", "y,x,z\nb,2,new\n")
    relation, _ = open_source(tmp_path, source="in/*.csv")
    assert sorted(relation.columns) == ["x", "y", "z"]
    assert sorted(relation.select("x, y").fetchall()) == [(1, "a"), (2, "b")]


def test_glob_problems(tmp_path: Path) -> None:
    assert "no files match" in refused(tmp_path, source="nothing/*.csv")
    assert fingerprint(tmp_path, source="nothing/*.csv") == "missing"
    write(tmp_path / "a.csv", "x\n1\n")
    write(tmp_path / "b.json", '{"x": 1}\n')
    assert "files of one kind" in refused(tmp_path, source="*.*")


def test_json_array_and_ndjson(tmp_path: Path) -> None:
    write(tmp_path / "a.json", '[{"x": 1, "y": "a"}, {"x": 2, "y": "b"}]')
    relation, _ = open_source(tmp_path, source="a.json")
    assert relation.order("x").fetchall() == [(1, "a"), (2, "b")]
    write(tmp_path / "b.jsonl", '{"x": 1, "y": "a"}\n{"x": "two", "y": "b", "z": true}\n')
    relation, _ = open_source(tmp_path, source="b.jsonl")
    assert sorted(relation.select("x, z").fetchall(), key=str) == [("1", None), ("two", True)]


def test_malformed_json_names_its_line(tmp_path: Path) -> None:
    write(tmp_path / "bad.jsonl", '{"x": 1}\n{"x": 2,\n{"x": 3}\n')
    message = refused(tmp_path, source="bad.jsonl")
    assert "not valid JSON (line" in message and "NDJSON" in message


# -- Excel -------------------------------------------------------------------------------------


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _cell(ref: str, value: Any, strings: dict[str, int]) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'
    if isinstance(value, int | float):
        return f'<c r="{ref}"><v>{value}</v></c>'
    if isinstance(value, dt.datetime):
        serial = (value - dt.datetime(1899, 12, 30)).total_seconds() / 86400
        return f'<c r="{ref}" s="1"><v>{serial}</v></c>'
    index = strings.setdefault(value, len(strings))
    return f'<c r="{ref}" t="s"><v>{index}</v></c>'


def write_xlsx(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    """A minimal but real .xlsx (shared strings, a date style), as Excel lays one out."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    pkg = "http://schemas.openxmlformats.org/package/2006"
    ooxml = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    strings: dict[str, int] = {}
    parts: dict[str, str] = {}
    for number, rows in enumerate(sheets.values(), start=1):
        body = "".join(
            f'<row r="{r}">'
            + "".join(_cell(f"{_column_letter(c)}{r}", v, strings) for c, v in enumerate(row))
            + "</row>"
            for r, row in enumerate(rows, start=1)
        )
        parts[f"xl/worksheets/sheet{number}.xml"] = (
            f'<worksheet xmlns="{main}"><sheetData>{body}</sheetData></worksheet>'
        )
    count = len(sheets)
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{n}.xml" ContentType="{ooxml}.worksheet+xml"/>'
        for n in range(1, count + 1)
    )
    parts["[Content_Types].xml"] = (
        f'<Types xmlns="{pkg}/content-types">'
        f'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
        'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/xl/workbook.xml" ContentType="{ooxml}.sheet.main+xml"/>'
        f'<Override PartName="/xl/styles.xml" ContentType="{ooxml}.styles+xml"/>'
        f'<Override PartName="/xl/sharedStrings.xml" ContentType="{ooxml}.sharedStrings+xml"/>'
        f"{overrides}</Types>"
    )
    parts["_rels/.rels"] = (
        f'<Relationships xmlns="{pkg}/relationships"><Relationship Id="rId1" '
        f'Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    )
    sheet_list = "".join(
        f'<sheet name="{escape(name)}" sheetId="{n}" r:id="rId{n}"/>'
        for n, name in enumerate(sheets, start=1)
    )
    parts["xl/workbook.xml"] = (
        f'<workbook xmlns="{main}" xmlns:r="{rel}"><sheets>{sheet_list}</sheets></workbook>'
    )
    links = "".join(
        f'<Relationship Id="rId{n}" Type="{rel}/worksheet" Target="worksheets/sheet{n}.xml"/>'
        for n in range(1, count + 1)
    )
    parts["xl/_rels/workbook.xml.rels"] = (
        f'<Relationships xmlns="{pkg}/relationships">{links}'
        f'<Relationship Id="rId{count + 1}" Type="{rel}/styles" Target="styles.xml"/>'
        f'<Relationship Id="rId{count + 2}" Type="{rel}/sharedStrings" '
        'Target="sharedStrings.xml"/></Relationships>'
    )
    parts["xl/styles.xml"] = (
        f'<styleSheet xmlns="{main}"><numFmts count="1"><numFmt numFmtId="164" '
        'formatCode="yyyy-mm-dd hh:mm"/></numFmts><fonts count="1"><font/></fonts>'
        '<fills count="1"><fill/></fills><borders count="1"><border/></borders>'
        '<cellStyleXfs count="1"><xf/></cellStyleXfs><cellXfs count="2"><xf/>'
        '<xf numFmtId="164" applyNumberFormat="1"/></cellXfs></styleSheet>'
    )
    shared = "".join(f'<si><t xml:space="preserve">{escape(s)}</t></si>' for s in strings)
    parts["xl/sharedStrings.xml"] = f'<sst xmlns="{main}" count="{len(strings)}">{shared}</sst>'
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, xml in parts.items():
            archive.writestr(name, '<?xml version="1.0" encoding="UTF-8"?>' + xml)
    return path


def test_excel_sheets_types_and_late_text(tmp_path: Path) -> None:
    start = dt.datetime(2024, 1, 1, 8, 30)
    rows = [[i, i / 4, "ab"[i % 2], start + dt.timedelta(days=i), i] for i in range(1500)]
    rows[1200][4] = "late text"  # past fastexcel's default 1,000-row type sample
    write_xlsx(
        tmp_path / "book.xlsx",
        {"notes": [["note"], ["hello"]], "data": [["n", "half", "cat", "when", "mixed"], *rows]},
    )
    relation, label = open_source(tmp_path, source="book.xlsx", table="data")
    assert label == str(tmp_path / "book.xlsx")
    assert sources.column_types(relation) == {
        "n": "BIGINT",
        "half": "DOUBLE",
        "cat": "VARCHAR",
        "when": "TIMESTAMP",
        "mixed": "VARCHAR",
    }
    assert relation.filter("n = 1200").fetchall() == [
        (1200, 300.0, "a", dt.datetime(2027, 4, 15, 8, 30), "late text")
    ]
    assert open_source(tmp_path, source="book.xlsx")[0].fetchall() == [("hello",)]
    assert sources.read_table(sources.connect(), tmp_path / "book.xlsx", sheet="data").columns[0]


def test_excel_problems(tmp_path: Path) -> None:
    write_xlsx(tmp_path / "b.xlsx", {"one": [["x", "y", "x"], [1, 2, 3]], "two": [["x"]]})
    assert "no sheet named 'three' (sheets: one, two)" in refused(
        tmp_path, source="b.xlsx", table="three"
    )
    assert "duplicate column name 'x'" in refused(tmp_path, source="b.xlsx")
    assert "no data rows" in refused(tmp_path, source="b.xlsx", table="two")
    (tmp_path / "fake.xlsx").write_bytes(b"not a zip at all")
    assert "cannot be read as an Excel workbook" in refused(tmp_path, source="fake.xlsx")


# -- SQLite ------------------------------------------------------------------------------------


def make_sqlite(path: Path, statements: list[str], rows: list[tuple] | None = None) -> Path:
    with sqlite3.connect(path) as db:
        for statement in statements:
            db.execute(statement)
        if rows:
            marks = ", ".join("?" * len(rows[0]))
            db.executemany(f'INSERT INTO "we""ird; table" VALUES ({marks})', rows)
    return path


def test_sqlite_table_and_query_by_url_and_by_file(tmp_path: Path) -> None:
    db = make_sqlite(
        tmp_path / "shop.db",
        ['CREATE TABLE "we""ird; table" (id INTEGER, price REAL, name TEXT)'],
        [(1, 2.5, "a"), (2, None, "b"), (3, 4.0, None)],
    )
    relation, label = open_source(tmp_path, source="sqlite:///shop.db", table='we"ird; table')
    assert label == f'{db} [table we"ird; table]'
    assert sources.column_types(relation) == {"id": "BIGINT", "price": "DOUBLE", "name": "VARCHAR"}
    assert relation.order("id").fetchall() == [(1, 2.5, "a"), (2, None, "b"), (3, 4.0, None)]
    relation, _ = open_source(
        tmp_path, source="shop.db", query='SELECT id * 10 AS id10 FROM "we""ird; table";'
    )
    assert sorted(relation.fetchall()) == [(10,), (20,), (30,)]
    absolute = f"sqlite:///{db}"  # sqlite:////abs/path.db
    assert open_source(tmp_path, source=absolute, table='we"ird; table')[0].columns[0] == "id"


def test_sqlite_mixed_types_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite, "CHUNK_ROWS", 2)
    rows = [(None, 1, None), (None, 2, 1), (2.5, 3, "x"), (4.0, 4, 5), (None, "five", 6)]
    make_sqlite(tmp_path / "m.db", ['CREATE TABLE "we""ird; table" (a, b, c)'], rows)
    relation, _ = open_source(tmp_path, source="m.db", table='we"ird; table')
    assert sources.column_types(relation) == {"a": "DOUBLE", "b": "VARCHAR", "c": "VARCHAR"}
    assert relation.select("b, c").fetchall() == [
        ("1", None),
        ("2", "1"),
        ("3", "x"),
        ("4", "5"),
        ("five", "6"),
    ]


def test_sqlite_problems_are_one_line(tmp_path: Path) -> None:
    db = make_sqlite(tmp_path / "s.db", ["CREATE TABLE sales (x INTEGER)", "CREATE TABLE t (y)"])
    assert "no table 'nope' (tables: sales, t)" in refused(tmp_path, source="s.db", table="nope")
    assert "set [data] table to one of: sales, t" in refused(tmp_path, source="s.db")
    assert "not both" in refused(tmp_path, source="s.db", table="t", query="SELECT 1")
    assert "the query failed: no such table: nope" in refused(
        tmp_path, source="s.db", query="SELECT * FROM nope"
    )
    assert "no data rows" in refused(tmp_path, source="s.db", table="sales")
    assert "readonly" in refused(tmp_path, source="s.db", query="DELETE FROM sales")
    write(tmp_path / "text.db", "hello")
    assert "not a SQLite database" in refused(tmp_path, source="text.db", table="t")
    assert "file not found" in refused(tmp_path, source="sqlite:///gone.db", table="t")
    assert db.stat().st_size > 0


def test_sqlite_fingerprint_changes_with_new_rows(tmp_path: Path) -> None:
    db = make_sqlite(tmp_path / "f.db", ["CREATE TABLE t (x INTEGER)", "INSERT INTO t VALUES (1)"])
    before = fingerprint(tmp_path, source="f.db", table="t")
    assert before == fingerprint(tmp_path, source="sqlite:///f.db", table="t")
    with sqlite3.connect(db) as con:
        con.execute("INSERT INTO t VALUES (2)")
    assert fingerprint(tmp_path, source="f.db", table="t") != before


# -- PostgreSQL (a real server) ----------------------------------------------------------------


def test_postgres_table_and_query(postgres_server: PostgresServer) -> None:
    postgres_server.execute(
        "CREATE SCHEMA analytics",
        "CREATE TABLE analytics.orders (id int, amount numeric(10,2), note text, paid boolean, "
        "at timestamptz)",
        "INSERT INTO analytics.orders VALUES (1, 12.50, 'first', true, '2024-01-01 10:00+00'), "
        "(2, NULL, NULL, false, NULL), (3, 7.25, 'third', NULL, '2024-03-01 00:00+00')",
    )
    url = postgres_server.url()
    relation, label = open_source(Path("."), source=url, table="analytics.orders")
    assert label == f"{url} [table analytics.orders]"
    types = sources.column_types(relation)
    assert types["id"] == "INTEGER" and types["amount"] == "DOUBLE" and types["paid"] == "BOOLEAN"
    assert relation.order("id").select("id, amount, note, paid").fetchall() == [
        (1, 12.5, "first", True),
        (2, None, None, False),
        (3, 7.25, "third", None),
    ]
    relation, label = open_source(
        Path("."), source=url, query="SELECT id, amount * 2 AS doubled FROM analytics.orders;"
    )
    assert label == f"{url} (query)"
    assert relation.aggregate("sum(doubled)").fetchall() == [(39.5,)]
    postgres_server.execute('CREATE TABLE "odd.name" (x int)', 'INSERT INTO "odd.name" VALUES (7)')
    assert open_source(Path("."), source=url, table="odd.name")[0].fetchall() == [(7,)]


def test_postgres_problems_are_one_line(postgres_server: PostgresServer) -> None:
    postgres_server.execute("CREATE TABLE IF NOT EXISTS kept (x int)")
    url = postgres_server.url()
    missing = refused(Path("."), source=url, table="missing")
    assert "no table 'missing' (tables:" in missing and "kept" in missing
    assert 'syntax error at or near "SELEC"' in refused(Path("."), source=url, query="SELEC 1")
    assert "read-only transaction" in refused(Path("."), source=url, query="DELETE FROM kept")
    late = "SELECT 1 / (x - 150000) AS v FROM generate_series(1, 300000) AS x"  # fails mid-stream
    assert "the query failed: division by zero" in refused(Path("."), source=url, query=late)
    assert "no data rows" in refused(Path("."), source=url, table="kept")
    assert "set [data] table" in refused(Path("."), source=url)


def test_postgres_fingerprint_follows_the_rows(
    postgres_server: PostgresServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres, "FINGERPRINT_REUSE_S", 0.0)
    postgres_server.execute(
        "CREATE TABLE versions (x int, y text)", "INSERT INTO versions VALUES (1, 'a')"
    )
    url = postgres_server.url()
    first = fingerprint(Path("."), source=url, table="versions")
    assert first.startswith("pg-") and first == fingerprint(Path("."), source=url, table="versions")
    postgres_server.execute("INSERT INTO versions VALUES (2, 'b')")
    second = fingerprint(Path("."), source=url, table="versions")
    assert second != first
    postgres_server.execute("UPDATE versions SET y = 'c' WHERE x = 2")
    assert fingerprint(Path("."), source=url, table="versions") not in (first, second)
    assert fingerprint(Path("."), source=url, table="nope") == "unavailable"


@pytest.mark.timeout(60)  # the connect timeout holds: a hang fails here
def test_unreachable_server_is_named_without_its_password(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again below: nothing listens there
    url = f"postgresql://alice:s3cret@127.0.0.1:{port}/shop"
    message = refused(tmp_path, source=url, table="t")
    assert "s3cret" not in message
    assert message.startswith(f"postgresql://alice:***@127.0.0.1:{port}/shop: cannot connect")
    assert fingerprint(tmp_path, source=url, table="t") == "unavailable"
    assert postgres.redact("postgres://h/db?user=a&password=pw") == (
        "postgres://h/db?user=a&password=***"
    )


def test_unknown_url_schemes_are_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, source="ftp://host/data.parquet")
    assert "is not a source mlwizard reads" in message and "s3://bucket/key" in message
    assert fingerprint(tmp_path, source="ftp://host/data.parquet") == "invalid"


# -- every source through the discovery and data phases ----------------------------------------


def _as_csv_gz(frame: pd.DataFrame, root: Path) -> dict[str, str]:
    with gzip.open(root / "d.csv.gz", "wt", encoding="utf-8") as handle:
        frame.to_csv(handle, index=False)
    return {"source": "d.csv.gz"}


def _as_parquet_glob(frame: pd.DataFrame, root: Path) -> dict[str, str]:
    (root / "parts").mkdir()
    for index, part in enumerate((frame.iloc[:150], frame.iloc[150:])):
        part.to_parquet(root / "parts" / f"part-{index}.parquet", index=False)
    return {"source": "parts/*.parquet"}


def _as_ndjson(frame: pd.DataFrame, root: Path) -> dict[str, str]:
    frame.to_json(root / "d.ndjson", orient="records", lines=True)
    return {"source": "d.ndjson"}


def _as_xlsx(frame: pd.DataFrame, root: Path) -> dict[str, str]:
    rows = [[None if pd.isna(v) else v for v in row] for row in frame.itertuples(index=False)]
    write_xlsx(root / "d.xlsx", {"Sheet1": [list(frame.columns), *rows]})
    return {"source": "d.xlsx"}


def _as_sqlite(frame: pd.DataFrame, root: Path) -> dict[str, str]:
    with sqlite3.connect(root / "d.sqlite") as con:
        frame.to_sql("customers", con, index=False)
    return {"source": "sqlite:///d.sqlite", "table": "customers"}


WRITERS = [_as_csv_gz, _as_parquet_glob, _as_ndjson, _as_xlsx, _as_sqlite]


def _run_phases(root: Path, data: dict[str, str]) -> runner.RunReport:
    update_config_file(root / "mlwizard.toml", {"data": {**data, "target": "label"}})
    report = runner.run(Workspace(root), ["discovery", "data"])
    assert report.error is None, report.error
    return report


@pytest.mark.parametrize("writer", WRITERS, ids=[w.__name__[4:] for w in WRITERS])
def test_each_file_source_runs_through_the_data_phase(tmp_path: Path, writer: Any) -> None:
    data = writer(synthetic_frame(), tmp_path)
    report = _run_phases(tmp_path, data)
    metrics = report.phases["data"].metrics
    assert metrics["rows_used"] == 400 and {"x1", "x2", "colour"} <= set(metrics["features"])
    assert (tmp_path / "artifacts" / "data" / "train.parquet").is_file()
    again = runner.run(Workspace(tmp_path), ["discovery", "data"])
    assert [o.status for o in again.phases.values()] == ["skipped", "skipped"]


def test_postgres_runs_through_the_data_phase(
    tmp_path: Path,
    postgres_server: PostgresServer,
) -> None:
    postgres_server.ingest(
        "customers", pa.Table.from_pandas(synthetic_frame(), preserve_index=False)
    )
    report = _run_phases(tmp_path, {"source": postgres_server.url(), "table": "customers"})
    assert report.phases["data"].metrics["rows_used"] == 400
    postgres_server.execute("DELETE FROM customers WHERE x2 < 1")
    time.sleep(postgres.FINGERPRINT_REUSE_S)
    states = {s.phase: s.status for s in runner.project_status(Workspace(tmp_path))}
    assert states["discovery"] == "stale" and states["data"] == "stale"
