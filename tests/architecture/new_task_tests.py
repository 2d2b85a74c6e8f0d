"""The new task's one test file: config -> prepare -> run_model (the shared template) -> served predictions."""

from pathlib import Path

from recsys.experiment import experiment_config_from_dict
from recsys.serving.predictor import load_predictor
from recsys.tasks import get_task


def test_reorder_task_runs_end_to_end(tmp_path: Path):
    cfg = experiment_config_from_dict({
        "name": "reorder", "task": "reorder", "seed": 3,
        "data": {"source": "synthetic", "synthetic": {"n_users": 150, "n_items": 60, "mean_interactions": 12}},
        "split": {"method": "random", "test_size": 0.3},
        "metrics": {"k": [3], "primary": "reorder_hit_rate_at_3"},
        "models": [{"name": "popularity"}],
    })
    task = get_task("reorder")
    task.validate(cfg)
    ctx = task.prepare(cfg)
    result = task.run_model(ctx, cfg.models[0], tmp_path)
    assert 0.0 <= result.metrics["reorder_hit_rate_at_3"] <= 1.0
    assert set(result.seconds) >= {"fit_seconds", "evaluate_seconds"}
    served = load_predictor(result.model_dir).predict(result.input_example, {"k": 3})
    assert len(served) > 0 and set(served["user_id"]) <= set(result.input_example["user_id"].astype(str))
