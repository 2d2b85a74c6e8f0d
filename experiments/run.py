"""MLproject entry point `run`/`main`: parse args -> recsys -> exit code."""

import sys

from recsys.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
