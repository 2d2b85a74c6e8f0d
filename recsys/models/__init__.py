from recsys.models.base import Model, ModelConfig, Recommender, topk
from recsys.models.catalog import available, create, get_model_class, register

__all__ = ["Model", "ModelConfig", "Recommender", "available", "create", "get_model_class", "register", "topk"]
