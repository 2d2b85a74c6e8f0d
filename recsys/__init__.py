"""recsys: a config-driven experimentation platform for recommender and segmentation systems."""

from recsys.errors import ConfigError, DataError, NotFittedError, RecsysError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DataError", "NotFittedError", "RecsysError", "__version__"]
