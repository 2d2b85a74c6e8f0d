"""The only package that imports mlflow."""

from recsys.tracking.mlflow_tracker import MlflowTracker, resolve_tracking_uri

__all__ = ["MlflowTracker", "resolve_tracking_uri"]
