"""MLproject entry point `tune`: parse args -> recsys tune -> exit code.

    python experiments/tune.py configs/movielens.yaml --model als --n-trials 20 [--storage URL]
"""

import sys

from recsys.cli import main

if __name__ == "__main__":
    sys.exit(main(["tune", *sys.argv[1:]]))
