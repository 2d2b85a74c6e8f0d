"""MLproject entry point `status`: parse args -> recsys registry status -> exit code."""

import sys

from recsys.cli import main
from recsys.faults import entry_point

if __name__ == "__main__":
    entry_point()  # under `mlflow run`: SIGTERM when mlflow dies (no orphan goes on to register a model)
    sys.exit(main(["registry", "status", *sys.argv[1:]]))
