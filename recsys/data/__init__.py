from recsys.data.sources import load_dataset
from recsys.data.split import Split, split_dataset, split_interactions, validation_split
from recsys.data.stats import describe
from recsys.data.tables import Dataset, TrainData
from recsys.data.vocab import Vocabulary

__all__ = ["Dataset", "Split", "TrainData", "Vocabulary", "describe", "load_dataset", "split_dataset",
           "split_interactions", "validation_split"]
