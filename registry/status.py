"""MLproject entry point `status`: parse args -> recsys registry status -> exit code."""

import sys

from recsys.cli import main

if __name__ == "__main__":
    sys.exit(main(["registry", "status", *sys.argv[1:]]))
