from recsys.config.loader import config_from_dict, config_hash, flatten, load_config
from recsys.config.schema import ExperimentConfig, ModelEntry

__all__ = ["ExperimentConfig", "ModelEntry", "config_from_dict", "config_hash", "flatten", "load_config"]
