"""MLproject entry point `rollback`: parse args -> recsys registry rollback -> exit code."""

import sys

from recsys.cli import main

if __name__ == "__main__":
    sys.exit(main(["registry", "rollback", *sys.argv[1:]]))
