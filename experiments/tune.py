"""MLproject entry point `tune`: parse args -> recsys tune -> exit code.

    python experiments/tune.py configs/movielens.yaml --model als --n-trials 20 [--storage URL]
"""

import sys

from recsys.cli import main
from recsys.faults import entry_point

if __name__ == "__main__":
    entry_point()  # under `mlflow run`: SIGTERM when mlflow dies (no orphan goes on to register a model)
    sys.exit(main(["tune", *sys.argv[1:]]))
