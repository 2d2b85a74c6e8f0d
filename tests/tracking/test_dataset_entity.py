"""The MLflow dataset of a frame: schema from a small sample that still sees late values, digest and profile of
the whole frame."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from mlflow.data.pandas_dataset import from_pandas

from recsys.tracking.mlflow_tracker import SCHEMA_SAMPLE_ROWS, dataset_entity, schema_sample


def _frame(n: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    late = np.full(n, None, dtype=object)
    late[n - 3:] = ["a", "b", "c"]  # a text column empty until its last rows
    gappy = rng.random(n)
    gappy[:5] = np.nan
    return pd.DataFrame({"user_id": [f"u{i % 97}" for i in range(n)], "item": rng.integers(0, 50, n),
                         "ts": pd.date_range("2024-01-01", periods=n, freq="min"), "late": late, "gappy": gappy,
                         "empty": np.full(n, None, dtype=object)})


def _types(schema_json: str) -> dict[str, tuple[str, bool]]:
    return {c["name"]: (c["type"], c["required"]) for c in json.loads(schema_json)["mlflow_colspec"]}


def test_schema_types_match_mlflow_on_the_whole_frame_with_a_fraction_of_the_rows():
    frame = _frame(5 * SCHEMA_SAMPLE_ROWS)
    whole = _types(from_pandas(frame[["user_id", "item", "ts", "gappy"]]).to_dict()["schema"])  # every row
    ours = _types(dataset_entity(frame, "x").schema)
    assert {c: ours[c] for c in whole} == whole
    assert ours["late"] == ("string", False)  # its values are strings, and it has nulls
    assert ours["gappy"] == ("double", False)
    assert ours["user_id"][1] is True and ours["item"][1] is True


def test_schema_sample_keeps_dtypes_and_length_and_takes_late_values():
    frame = _frame(3 * SCHEMA_SAMPLE_ROWS)
    sample = schema_sample(frame)
    assert len(sample) == SCHEMA_SAMPLE_ROWS
    assert sample.dtypes.to_dict() == frame.dtypes.to_dict()
    assert sample["late"].dropna().tolist() == ["a", "b", "c"] and sample["late"].isna().any()
    assert sample["gappy"].isna().sum() == 1 and sample["gappy"].dropna().tolist() == frame["gappy"].dropna().head(
        SCHEMA_SAMPLE_ROWS - 1).tolist()
    pd.testing.assert_series_equal(sample["user_id"], frame["user_id"].head(SCHEMA_SAMPLE_ROWS))
    assert sample["empty"].isna().all()


@pytest.mark.parametrize("n", [0, 1, 7])
def test_schema_sample_of_a_short_frame_is_the_frame(n):
    frame = _frame(max(n, 3)).head(n)
    sample = schema_sample(frame)
    assert len(sample) == n and list(sample.columns) == list(frame.columns)


def test_profile_and_digest_cover_the_whole_frame():
    frame = _frame(2 * SCHEMA_SAMPLE_ROWS)
    entity = dataset_entity(frame, "x")
    assert json.loads(entity.profile) == {"num_rows": len(frame), "num_elements": int(frame.size)}
    longer = pd.concat([frame, frame.tail(1)], ignore_index=True)
    assert dataset_entity(longer, "x").digest != entity.digest  # the row count is part of the digest
    changed = frame.copy()
    changed.loc[SCHEMA_SAMPLE_ROWS + 10, "item"] += 1  # past the schema sample, within the digest's rows
    assert dataset_entity(changed, "x").digest != entity.digest
    assert dataset_entity(frame.copy(), "x").digest == entity.digest
