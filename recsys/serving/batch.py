"""Batch scoring: the top-k of many users written to Parquet or a database table, swapped in atomically.

    recsys score --model models:/recsys-quickstart@champion --users all --k 50 --output recs.parquet
    recsys score --model models:/recsys-quickstart@champion --users users.csv --output sqlite:///shop.db --table recs

Rows come from the registered pyfunc's own predictor (`predict` of the same users gives the same rows), in chunks
of `--batch-size` users with a progress bar. Output goes to a temporary file (same folder) or table first and
replaces the previous output only once complete: a reader sees the old result or the new one, never half of one.
The run is logged to MLflow (tag role=batch, model name/version, counts, seconds).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recsys.errors import DataError
from recsys.logging import get_logger, progress_enabled

_log = get_logger(__name__)

TMP_MARK = "__recsys_tmp_"


# where the users come from --------------------------------------------------------------------------------------
def read_users(spec: str, known: np.ndarray) -> np.ndarray:
    """`all` -> every user the model knows; else a CSV/Parquet file with a `user_id` column (or a single column,
    or a text file of one id per line). Duplicates are scored once, in first-seen order."""
    if spec == "all":
        return np.asarray(known)
    path = Path(spec)
    if not path.exists():
        raise DataError(f"--users {spec!r}: file does not exist; pass `all` or a CSV/Parquet/text file of user ids")
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    elif path.suffix.lower() in (".csv", ".tsv"):
        frame = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",", dtype=str)
    else:
        lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        frame = pd.DataFrame({"user_id": lines})
    if "user_id" not in frame.columns:
        if len(frame.columns) != 1:
            raise DataError(f"--users {spec}: needs a `user_id` column (or exactly one column), "
                            f"found {list(frame.columns)}")
        frame = frame.rename(columns={frame.columns[0]: "user_id"})
    ids = frame["user_id"].dropna()
    if ids.empty:
        raise DataError(f"--users {spec}: no user ids in the file")
    return pd.unique(ids.astype(str).to_numpy())


# where the rows go ----------------------------------------------------------------------------------------------
class Sink:
    """Writes chunks somewhere temporary; `commit` swaps them in as the output, `abort` removes them."""

    target: str = ""

    def write(self, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def abort(self) -> None:
        raise NotImplementedError


class ParquetSink(Sink):
    """A Parquet file written as `.<name>.__recsys_tmp_<id>` beside the target, then `os.replace`d onto it."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        if not self.path.parent.exists():
            raise DataError(f"--output {path}: folder {str(self.path.parent)!r} does not exist")
        self.target = str(self.path)
        for stale in self.path.parent.glob(f".{self.path.name}{TMP_MARK}*"):  # left by a killed run
            _log.warning("removing %s, left by an interrupted run", stale)
            stale.unlink(missing_ok=True)
        self.tmp = self.path.parent / f".{self.path.name}{TMP_MARK}{uuid.uuid4().hex[:8]}"
        self._writer: Any = None  # pyarrow.parquet.ParquetWriter once the first chunk arrives

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.tmp, table.schema)
        self._writer.write_table(table)

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.close()
        with open(self.tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self.tmp.unlink(missing_ok=True)


class SqlSink(Sink):
    """Chunks appended to `<table>__recsys_tmp_<id>`, then in one transaction: drop the old table, rename."""

    def __init__(self, url: str, table: str) -> None:
        import sqlalchemy as sa

        from recsys.data.sql import make_engine, mask_url, resolve_url

        self.url = resolve_url(url)
        self.table = table
        self.target = f"{mask_url(url)} table {table}"
        self.engine = make_engine(self.url)
        self.tmp = f"{table}{TMP_MARK}{uuid.uuid4().hex[:8]}"
        try:
            with self.engine.begin() as conn:
                for stale in sa.inspect(conn).get_table_names():
                    if stale.startswith(f"{table}{TMP_MARK}"):
                        _log.warning("dropping table %s, left by an interrupted run", stale)
                        conn.execute(sa.text(f"DROP TABLE {self._q(conn, stale)}"))
        except sa.exc.SQLAlchemyError as exc:
            raise DataError(f"--output {self.target}: {exc.__class__.__name__}: "
                            f"{str(getattr(exc, 'orig', exc)).splitlines()[0]}") from None

    @staticmethod
    def _q(conn: Any, name: str) -> str:
        return conn.dialect.identifier_preparer.quote(name)

    def write(self, frame: pd.DataFrame) -> None:
        with self.engine.begin() as conn:  # one committed chunk at a time: memory stays bounded
            frame.to_sql(self.tmp, conn, if_exists="append", index=False)

    def commit(self) -> None:
        import sqlalchemy as sa

        with self.engine.begin() as conn:
            if not sa.inspect(conn).has_table(self.tmp):  # no rows at all: an empty table of the right shape
                pd.DataFrame({"user_id": [], "item_id": [], "rank": [], "score": [], "reason": []}).astype(
                    {"user_id": str, "item_id": str, "rank": "int64", "score": float, "reason": str}
                ).to_sql(self.tmp, conn, index=False)
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {self._q(conn, self.table)}"))
            conn.execute(sa.text(f"ALTER TABLE {self._q(conn, self.tmp)} RENAME TO {self._q(conn, self.table)}"))
            ix = self._q(conn, f"ix_{self.table}_user_id_{uuid.uuid4().hex[:6]}")
            conn.execute(sa.text(f"CREATE INDEX {ix} ON {self._q(conn, self.table)} (user_id)"))
        self.engine.dispose()

    def abort(self) -> None:
        import sqlalchemy as sa

        try:
            with self.engine.begin() as conn:
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {self._q(conn, self.tmp)}"))
        finally:
            self.engine.dispose()


def make_sink(output: str, table: str | None) -> Sink:
    """A SQLAlchemy URL (with --table) or a .parquet path."""
    if "://" in output:
        if not table:
            raise DataError(f"--output {output.split('@')[-1]} is a database: name the table with --table")
        return SqlSink(output, table)
    if not output.lower().endswith((".parquet", ".pq")):
        raise DataError(f"--output {output!r} must be a .parquet path or a SQLAlchemy URL with --table")
    return ParquetSink(output)


# scoring ------------------------------------------------------------------------------------------------------
@dataclass
class BatchResult:
    users: int
    rows: int
    users_cold_start: int
    seconds: float
    output: str


def chunks(values: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def score_to(predictor: Any, user_ids: np.ndarray, k: int, sink: Sink, batch_size: int = 2000) -> BatchResult:
    """predictor.predict over `user_ids` in chunks into `sink`; swapped in at the end (aborted on any error)."""
    from tqdm.auto import tqdm

    if k <= 0:
        raise DataError(f"--k must be > 0, but got {k}")
    if batch_size <= 0:
        raise DataError(f"--batch-size must be > 0, but got {batch_size}")
    t0 = time.perf_counter()
    rows = cold = 0
    try:
        with tqdm(total=len(user_ids), unit="users", desc="score", disable=not progress_enabled()) as bar:
            for chunk in chunks(user_ids, batch_size):
                out = predictor.predict(pd.DataFrame({"user_id": chunk}), {"k": k})
                sink.write(out)
                rows += len(out)
                cold += int(out.loc[out["reason"] == "cold_start", "user_id"].nunique())
                bar.update(len(chunk))
        sink.commit()
    except BaseException:
        sink.abort()
        raise
    return BatchResult(users=len(user_ids), rows=rows, users_cold_start=cold, seconds=time.perf_counter() - t0,
                       output=sink.target)
