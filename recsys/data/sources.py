"""`load_dataset(config)`: any configured source -> validated canonical `Dataset`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.config.schema import DataConfig
from recsys.data.tables import Dataset
from recsys.data.validation import validate_interactions, validate_items
from recsys.errors import DataError
from recsys.logging import get_logger
from recsys.random import RandomState

_log = get_logger(__name__)


def load_dataset(cfg: DataConfig, random_state: RandomState = 0) -> Dataset:
    if cfg.source == "synthetic":
        from recsys.data.synthetic import generate

        raw, items, truth = generate(cfg.synthetic, random_state)
        inter = validate_interactions(raw, cfg, "synthetic", now=float(raw["timestamp"].max()), timestamp_unit="s")
        return Dataset(name="synthetic", interactions=inter, items=items, extras={"truth": truth})
    if cfg.source == "movielens":
        from recsys.data import movielens

        folder = movielens.locate(cfg.movielens.name, cfg.movielens.path, cfg.movielens.download)
        ratings, items, files = movielens.read(cfg.movielens.name, folder)
        inter = validate_interactions(ratings, cfg, files[0], timestamp_unit="s",
                                      unit_option="the MovieLens format (unix seconds)")
        return Dataset(name=cfg.movielens.name, interactions=inter, items=validate_items(items, files[1]),
                       extras={"folder": str(folder), "files": files})
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


def load_tabular(cfg: DataConfig) -> Dataset:
    tab = cfg.tabular
    assert tab is not None
    df = read_table(tab.interactions, tab.sep)
    mapping = {v: k for k, v in tab.columns.items()}
    missing_src = [v for v in tab.columns.values() if v not in df.columns]
    if missing_src:
        raise DataError(f"{tab.interactions}: missing column(s) {missing_src} named in data.tabular.columns; "
                        f"found {list(df.columns)}")
    df = df.rename(columns=mapping)
    inter = validate_interactions(df, cfg, tab.interactions, timestamp_unit=tab.timestamp_unit, columns=tab.columns)
    if tab.items:
        raw_items = read_table(tab.items, tab.sep)
        missing_items = [v for v in tab.item_columns.values() if v not in raw_items.columns]
        if missing_items:
            raise DataError(f"{tab.items}: missing column(s) {missing_items} named in data.tabular.item_columns; "
                            f"found {list(raw_items.columns)}")
        raw_items = raw_items.rename(columns={v: k for k, v in tab.item_columns.items()})
        items = validate_items(raw_items, tab.items)
    else:  # no items table: the catalogue is the training items (test-only items must never be candidates)
        items = validate_items(pd.DataFrame({"item_id": inter["item_id"].iloc[:0]}), tab.interactions)
    return Dataset(name=Path(tab.interactions).stem, interactions=inter, items=items,
                   extras={"files": [tab.interactions] + ([tab.items] if tab.items else [])})
