from recsys.evaluation.recommend import EvalResult, EvalTarget, build_target, evaluate_recommender, metric_names

__all__ = ["EvalResult", "EvalTarget", "build_target", "evaluate_recommender", "metric_names"]
