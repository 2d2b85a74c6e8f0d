"""`load_dataset(config)`: any configured source -> validated canonical `Dataset`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.config.schema import DataConfig
from recsys.data.tables import Dataset, frame_fingerprint
from recsys.data.validation import align_item_ids, validate_interactions, validate_items
from recsys.errors import DataError
from recsys.logging import get_logger
from recsys.random import RandomState

_log = get_logger(__name__)


def load_dataset(cfg: DataConfig, random_state: RandomState = 0) -> Dataset:
    if cfg.source == "synthetic":
        from recsys.data.synthetic import generate

        raw, items, truth = generate(cfg.synthetic, random_state)
        now = float(raw["timestamp"].max())
        handed = [raw]
        del raw  # validation holds the only reference, so each raw column is freed once it is replaced
        inter = validate_interactions(handed.pop(), cfg, "synthetic", now=now, timestamp_unit="s")
        return Dataset(name="synthetic", interactions=inter, items=items, extras={"truth": truth})
    if cfg.source == "movielens":
        from recsys.data import movielens

        folder = movielens.locate(cfg.movielens.name, cfg.movielens.path, cfg.movielens.download)
        ratings, items, files = movielens.read(cfg.movielens.name, folder)
        handed = [ratings]
        del ratings  # as above: validation holds the only reference
        inter = validate_interactions(handed.pop(), cfg, files[0], timestamp_unit="s",
                                      unit_option="the MovieLens format (unix seconds)")
        return Dataset(name=cfg.movielens.name, interactions=inter, items=validate_items(items, files[1]),
                       extras={"folder": str(folder), "files": files})
    if cfg.source == "sql":
        return load_sql(cfg)
    return load_tabular(cfg)


def read_table(path: str, sep: str = ",") -> pd.DataFrame:
    p = Path(path)
    if not p.exists():
        raise DataError(f"{path}: file does not exist; check data.tabular paths (relative to the working directory)")
    try:
        if p.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(p)
        return pd.read_csv(p, sep=sep)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: cannot be read as {'Parquet' if p.suffix == '.parquet' else 'CSV'}: {exc}") from None


def map_interactions(df: pd.DataFrame, cfg: DataConfig, where: str, columns: dict[str, str], timestamp_unit: str,
                     key: str, filter_counts: bool = True) -> pd.DataFrame:
    """The one path from a raw table (file, database) to canonical interactions: check and apply the column
    mapping (`key` names the config section in errors), convert timestamps, validate."""
    mapping = {v: k for k, v in columns.items()}
    missing_src = [v for v in columns.values() if v not in df.columns]
    if missing_src:
        raise DataError(f"{where}: missing column(s) {missing_src} named in {key}.columns; found {list(df.columns)}")
    df = df.rename(columns=mapping)
    if not filter_counts:  # held-out parts: minimum counts are a property of the training data
        cfg = cfg.model_copy(update={"min_user_interactions": 1, "min_item_interactions": 1})
    return validate_interactions(df, cfg, where, timestamp_unit=timestamp_unit, unit_option=f"{key}.timestamp_unit",
                                 columns=columns)


def map_items(raw: pd.DataFrame, where: str, item_columns: dict[str, str], key: str) -> pd.DataFrame:
    missing_src = [v for v in item_columns.values() if v not in raw.columns]
    if missing_src:
        raise DataError(f"{where}: missing column(s) {missing_src} named in {key}.item_columns; "
                        f"found {list(raw.columns)}")
    return validate_items(raw.rename(columns={v: k for k, v in item_columns.items()}), where)


def _catalog_from(inter: pd.DataFrame, where: str) -> pd.DataFrame:
    """No items table: an empty catalogue, so the items are the training items (test-only items must never be
    candidates; `TrainData.build` takes them from the training rows)."""
    return validate_items(pd.DataFrame({"item_id": inter["item_id"].iloc[:0]}), where)


def load_tabular(cfg: DataConfig) -> Dataset:
    tab = cfg.tabular
    assert tab is not None
    inter = map_interactions(read_table(tab.interactions, tab.sep), cfg, tab.interactions, tab.columns,
                             tab.timestamp_unit, "data.tabular")
    parts = {p: map_interactions(read_table(getattr(tab, p), tab.sep), cfg, getattr(tab, p), tab.columns,
                                 tab.timestamp_unit, "data.tabular", filter_counts=False)
             for p in cfg.predefined_parts()}
    if tab.items:
        items = map_items(read_table(tab.items, tab.sep), tab.items, tab.item_columns, "data.tabular")
        items = align_item_ids(items, inter, tab.items, tab.interactions)
    else:
        items = _catalog_from(inter, tab.interactions)
    files = [tab.interactions] + [getattr(tab, p) for p in parts] + ([tab.items] if tab.items else [])
    return Dataset(name=Path(tab.interactions).stem, interactions=inter, items=items, parts=parts,
                   extras={"files": files})


def load_sql(cfg: DataConfig) -> Dataset:
    """`data.source: sql`: the same mapping and validation as `tabular`; the fingerprint covers the rows read."""
    from recsys.data.sql import read_part

    sq = cfg.sql
    assert sq is not None
    needed = [c for c in sq.columns.values()]
    raw, where = read_part(sq, "interactions", needed)
    fingerprints = [frame_fingerprint(raw)]
    inter = map_interactions(raw, cfg, where, sq.columns, sq.timestamp_unit, "data.sql")
    parts = {}
    for p in cfg.predefined_parts():
        raw_p, where_p = read_part(sq, p, needed)
        fingerprints.append(frame_fingerprint(raw_p))
        parts[p] = map_interactions(raw_p, cfg, where_p, sq.columns, sq.timestamp_unit, "data.sql",
                                    filter_counts=False)
    if sq.part("items"):
        raw_items, where_items = read_part(sq, "items", list(sq.item_columns.values()))
        fingerprints.append(frame_fingerprint(raw_items))
        items = map_items(raw_items, where_items, sq.item_columns, "data.sql")
        items = align_item_ids(items, inter, where_items, where)
    else:
        items = _catalog_from(inter, where)
    name = sq.interactions_table or "sql-query"
    return Dataset(name=name, interactions=inter, items=items, parts=parts,
                   extras={"rows_fingerprint": "-".join(fingerprints), "source": where})
