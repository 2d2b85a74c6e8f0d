"""Databases through SQLAlchemy: read a table or a query in chunks, load files into indexed tables.

    frame, where = read_part(cfg.data.sql, "interactions")   # DataFrame of the rows read, a label for errors
    load_files(["events.csv"], "sqlite:///shop.db")          # `recsys data load events.csv --into sqlite:///shop.db`

URLs may carry `${VAR}` references (expanded from the environment when used); passwords are masked in every
message and log line (`mask_url`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from recsys.config.urls import mask_text, mask_url
from recsys.errors import DataError
from recsys.logging import get_logger, progress_enabled

_log = get_logger(__name__)

URL_ENV = "RECSYS_SQL_URL"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
INDEX_COLUMNS = ("user_id", "item_id", "timestamp", "session_id")
TIME_COLUMNS = ("ts", "time", "timestamp", "datetime", "date", "event_time")


def resolve_url(url: str | None) -> str:
    """`url`, else $RECSYS_SQL_URL, with `${VAR}` expanded from the environment (a missing variable is an error)."""
    raw = url or os.environ.get(URL_ENV)
    if not raw:
        raise DataError(f"data.sql.url is not set and ${URL_ENV} is empty; give a SQLAlchemy URL such as "
                        "sqlite:///shop.db or postgresql+psycopg2://user:${PGPASSWORD}@host/db")

    def expand(m: re.Match) -> str:
        value = os.environ.get(m.group(1))
        if value is None:
            raise DataError(f"data.sql.url {mask_url(raw)!r} references ${{{m.group(1)}}}, which is not set in the "
                            "environment; export it before running")
        return value

    return _ENV_REF.sub(expand, raw)


def make_engine(url: str):
    """A SQLAlchemy engine for `url`; a malformed URL or a missing driver is a DataError (password masked)."""
    import sqlalchemy as sa

    try:
        return sa.create_engine(url)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ModuleNotFoundError) as exc:
        raise DataError(f"cannot open database {mask_url(url)!r}: {mask_text(str(exc))}") from None


@contextmanager
def connect(url: str) -> Iterator[Any]:
    """A connection to `url` (disposed afterwards); connection failures are one DataError line."""
    import sqlalchemy as sa

    engine = make_engine(url)
    try:
        try:
            conn = engine.connect()
        except sa.exc.SQLAlchemyError as exc:
            raise DataError(f"cannot connect to {mask_url(url)!r}: {_first_line(exc)}") from None
        with conn:
            yield conn
    finally:
        engine.dispose()


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return mask_text(text[0] if text else type(orig).__name__)


def _selectable(conn: Any, kind: str, value: str, key: str, url: str, needed: Iterable[str] = ()):
    """(statement, where) for a table (reflected: a missing table or column is a clear error) or a query."""
    import sqlalchemy as sa

    where = f"{mask_url(url)} {kind} {value!r}" if kind == "table" else f"{mask_url(url)} data.sql.{key}"
    if kind == "query":
        return sa.text(value), where
    schema, _, name = value.rpartition(".")
    try:
        table = sa.Table(name, sa.MetaData(), schema=schema or None, autoload_with=conn)
    except sa.exc.NoSuchTableError:
        found = sa.inspect(conn).get_table_names(schema=schema or None)
        raise DataError(f"{where}: table does not exist (data.sql.{key}); tables found: {sorted(found)}") from None
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing} named in data.sql."
                        f"{'item_columns' if key.startswith('items') else 'columns'}; "
                        f"found {list(table.columns.keys())}")
    return sa.select(table), where


def read_frame(url: str, kind: str, value: str, key: str, chunksize: int = 50_000,
               needed: Iterable[str] = ()) -> tuple[pd.DataFrame, str]:
    """Read a table or the result of a query in chunks of `chunksize` rows, with a progress bar.

    kind: 'table' or 'query'; key: the config key named in errors (e.g. 'interactions_table');
    needed: columns a table must have (checked before reading). Returns (frame, where).
    """
    import sqlalchemy as sa
    from tqdm.auto import tqdm

    with connect(url) as conn:
        stmt, where = _selectable(conn, kind, value, key, url, needed)
        try:
            count = (sa.select(sa.func.count()).select_from(stmt.subquery()) if kind == "table"
                     else sa.text(f"SELECT COUNT(*) FROM ({value.strip().rstrip(';')}) AS recsys_count"))
            total = conn.execute(count).scalar()
        except sa.exc.SQLAlchemyError:
            total = None  # some queries cannot be wrapped (e.g. trailing semicolons); the read says why if bad
            conn.rollback()
        chunks: list[pd.DataFrame] = []
        try:
            stream = conn.execution_options(stream_results=True)
            with tqdm(total=total, unit="rows", desc=f"read {key.rsplit('_', 1)[0]}",
                      disable=not progress_enabled()) as bar:
                for chunk in pd.read_sql_query(stmt, stream, chunksize=chunksize):
                    chunks.append(chunk)
                    bar.update(len(chunk))
        except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as exc:  # pandas wraps the driver's error
            raise DataError(f"{where}: the database refused the read: {_first_line(exc.__cause__ or exc)}") from None
    frame = pd.concat(chunks, ignore_index=True) if chunks else pd.DataFrame()
    if frame.empty and not len(frame.columns):
        frame = pd.DataFrame(columns=list(getattr(stmt, "selected_columns", {}).keys()))
    _log.info("read %d rows from %s", len(frame), where)
    return frame, where


def read_part(sql_cfg: Any, part: str, needed: Iterable[str] = ()) -> tuple[pd.DataFrame, str]:
    """Rows of one part (interactions, items, test, validation) of a `data.sql` section."""
    spec = sql_cfg.part(part)
    assert spec is not None, part
    kind, value = spec
    return read_frame(resolve_url(sql_cfg.url), kind, value, f"{part}_{kind}", sql_cfg.chunksize, needed)


# loading files into a database -------------------------------------------------------------------------------
def load_files(files: list[str], url: str, tables: list[str] | None = None, index: list[str] | None = None,
               if_exists: str = "fail", chunksize: int = 50_000, sep: str = ",") -> list[dict[str, Any]]:
    """Create one table per CSV/Parquet file (named after the file unless `tables` is given) with indexes.

    Indexes: on each column in `index` a file has; by default on id columns (user_id, item_id, session_id,
    any `*_id`) and time columns (timestamp, ts, time, date, ...).
    if_exists: fail (default), replace or append. Each file is written in one transaction: a failure leaves
    the database as it was. Returns one summary per table (name, rows, indexes).
    """
    import sqlalchemy as sa
    from tqdm.auto import tqdm

    from recsys.data.sources import read_table

    if tables and len(tables) != len(files):
        raise DataError(f"--table names {len(tables)} table(s) for {len(files)} file(s); give one per file or none")
    if if_exists not in ("fail", "replace", "append"):
        raise DataError(f"--if-exists must be fail, replace or append, but got {if_exists!r}")
    url = resolve_url(url)
    names = tables or [_table_name(f) for f in files]
    frames = [read_table(f, sep) for f in files]
    unknown = [c for c in (index or []) if not any(c in f.columns for f in frames)]
    if unknown:
        raise DataError(f"--index column(s) {unknown} are in none of the files; found "
                        f"{sorted({c for f in frames for c in f.columns})}")
    out = []
    engine = make_engine(url)
    try:
        for path, name, frame in zip(files, names, frames):
            cols = [c for c in frame.columns if (c in index if index else _default_index(str(c)))]
            try:
                with engine.begin() as conn:
                    exists = sa.inspect(conn).has_table(name)
                    if exists and if_exists == "fail":
                        raise DataError(f"table {name!r} already exists in {mask_url(url)}; pass --if-exists "
                                        "replace (or append)")
                    if exists and if_exists == "replace":
                        conn.execute(sa.text(f"DROP TABLE {_quote(conn, name)}"))
                    with tqdm(total=len(frame), unit="rows", desc=f"load {name}",
                              disable=not progress_enabled()) as bar:
                        for start in range(0, max(len(frame), 1), chunksize):
                            part = frame.iloc[start:start + chunksize]
                            part.to_sql(name, conn, if_exists="append", index=False)
                            bar.update(len(part))
                    made = []
                    for col in cols:
                        ix = f"ix_{name}_{col}"
                        conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {_quote(conn, ix)} "
                                             f"ON {_quote(conn, name)} ({_quote(conn, col)})"))
                        made.append(ix)
            except sa.exc.SQLAlchemyError as exc:
                raise DataError(f"{path}: cannot write table {name!r} to {mask_url(url)}: {_first_line(exc)}") from None
            _log.info("loaded %s into %s table %r: %d rows, indexes on %s", path, mask_url(url), name, len(frame),
                      cols)
            out.append({"file": path, "table": name, "rows": int(len(frame)), "indexes": made})
    finally:
        engine.dispose()
    return out


def _default_index(column: str) -> bool:
    c = column.lower()
    return c in INDEX_COLUMNS or c.endswith("_id") or c in TIME_COLUMNS


def _table_name(path: str) -> str:
    stem = Path(path).name.split(".")[0]
    name = re.sub(r"\W+", "_", stem).strip("_").lower()
    if not name or name[0].isdigit():
        name = f"t_{name}"
    return name


def _quote(conn: Any, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)
