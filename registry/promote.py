"""MLproject entry point `promote`: parse args -> recsys registry promote -> exit code."""

import sys

from recsys.cli import main
from recsys.faults import entry_point

if __name__ == "__main__":
    entry_point()  # under `mlflow run`: SIGTERM when mlflow dies (no orphan goes on to register a model)
    sys.exit(main(["registry", "promote", *sys.argv[1:]]))
