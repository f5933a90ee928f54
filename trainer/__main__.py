"""``torchrun --nproc_per_node P -m thresher.trainer ...`` (what ``thresher train`` launches)."""

import os
import sys

from thresher.trainer.train import end_rank, main

if __name__ == "__main__":
    code = main()
    if "WORLD_SIZE" in os.environ:  # a torchrun rank: see end_rank
        end_rank(code)
    sys.exit(code)
