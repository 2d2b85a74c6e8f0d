"""Config validation: unknown keys and bad values raise ConfigError naming key, value and what is allowed."""

from __future__ import annotations

import pytest
import yaml

from recsys.config.loader import parse_overrides
from recsys.errors import ConfigError
from recsys.experiment import experiment_config_from_dict, load_experiment_config

BASE = {"name": "t", "models": [{"name": "popularity"}]}


def test_unknown_top_level_key_suggests_fix():
    with pytest.raises(ConfigError, match=r"`modles` is unknown; did you mean `models`\?"):
        experiment_config_from_dict({**BASE, "modles": []})


def test_unknown_nested_key_lists_allowed():
    with pytest.raises(ConfigError, match=r"`split.methd` is unknown; did you mean `split.method`.*allowed here"):
        experiment_config_from_dict({**BASE, "split": {"methd": "temporal"}})


def test_bad_enum_value_names_key_value_and_allowed():
    with pytest.raises(ConfigError, match=r"`split.method` has invalid value 'timewise'.*'temporal'"):
        experiment_config_from_dict({**BASE, "split": {"method": "timewise"}})


def test_out_of_bounds_value():
    with pytest.raises(ConfigError, match=r"`split.test_size` has invalid value 1.5"):
        experiment_config_from_dict({**BASE, "split": {"test_size": 1.5}})


def test_unknown_model_suggests_name():
    with pytest.raises(ConfigError, match=r"unknown model 'alss'.*did you mean 'als'"):
        experiment_config_from_dict({**BASE, "models": [{"name": "alss"}]})


def test_unknown_model_param_suggests_name():
    with pytest.raises(ConfigError, match=r"`models.0.params.factor` is unknown for model 'als'; did you mean "
                                          r"`models.0.params.factors`"):
        experiment_config_from_dict({**BASE, "models": [{"name": "als", "params": {"factor": 8}}]})


def test_bad_model_param_value():
    with pytest.raises(ConfigError, match=r"`models.0.params.factors` has invalid value 0"):
        experiment_config_from_dict({**BASE, "models": [{"name": "als", "params": {"factors": 0}}]})


def test_duplicate_labels_rejected():
    with pytest.raises(ConfigError, match="labels must be unique"):
        experiment_config_from_dict({**BASE, "models": [{"name": "als"}, {"name": "als"}]})


def test_missing_required_key():
    with pytest.raises(ConfigError, match="`models` is required"):
        experiment_config_from_dict({"name": "t"})


def test_bad_k():
    with pytest.raises(ConfigError, match=r"every K must be > 0"):
        experiment_config_from_dict({**BASE, "metrics": {"k": [0, 10]}})


def test_overrides_change_nested_fields_and_lists():
    cfg = experiment_config_from_dict({**BASE, "models": [{"name": "als", "params": {"factors": 8}}]},
                                      ["seed=9", "models.0.params.factors=32", "metrics.k=[5, 20]",
                                       "split.method=random",
                                       "metrics.primary=ndcg_at_20"])  # the primary must be computed (issue 17)
    assert cfg.seed == 9 and cfg.models[0].params["factors"] == 32
    assert cfg.metrics.k == [5, 20] and cfg.split.method == "random"


def test_override_replaces_model_list():
    cfg = experiment_config_from_dict({**BASE, "models": [{"name": "als"}]},
                                      ["models=[{name: random}, {name: popularity}]"])
    assert [m.name for m in cfg.models] == ["random", "popularity"]


def test_override_string_form_and_errors():
    assert parse_overrides("seed=3 name=x") == [("seed", 3), ("name", "x")]
    # the MLproject `overrides` parameter: YAML values may contain spaces
    assert parse_overrides("models=[{name: random}, {name: als}] seed=4 'name=a b'") == [
        ("models", [{"name": "random"}, {"name": "als"}]), ("seed", 4), ("name", "a b")]
    with pytest.raises(ConfigError, match="must look like key=value"):
        parse_overrides(["seed"])
    with pytest.raises(ConfigError, match="not a valid index"):
        experiment_config_from_dict(BASE, ["models.5.name=als"])


def test_load_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_experiment_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_experiment_config(bad)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(BASE))
    assert load_experiment_config(good).name == "t"


def test_shipped_configs_validate():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    for path in sorted((repo / "configs").glob("*.yaml")):
        load_experiment_config(path)
