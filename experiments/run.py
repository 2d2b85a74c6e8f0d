"""MLproject entry point `run`/`main`: parse args -> recsys -> exit code."""

import sys

from recsys.cli import main
from recsys.faults import entry_point

if __name__ == "__main__":
    entry_point()  # under `mlflow run`: SIGTERM when mlflow dies (no orphan goes on to register a model)
    sys.exit(main(["run", *sys.argv[1:]]))
