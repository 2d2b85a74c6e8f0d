"""MLproject entry point `promote`: parse args -> recsys registry promote -> exit code."""

import sys

from recsys.cli import main

if __name__ == "__main__":
    sys.exit(main(["registry", "promote", *sys.argv[1:]]))
