"""MLproject entry point `score`: batch top-k for many users (see `recsys score --help`) -> exit code."""

import sys

from recsys.cli import main
from recsys.faults import entry_point

if __name__ == "__main__":
    entry_point()  # under `mlflow run`: SIGTERM when mlflow dies (no orphan goes on to register a model)
    args = list(sys.argv[1:])
    if "--table" in args and args[args.index("--table") + 1:args.index("--table") + 2] == [""]:
        i = args.index("--table")
        del args[i:i + 2]  # the MLproject default: no table (a Parquet output)
    sys.exit(main(["score", *args]))
