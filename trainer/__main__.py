"""``torchrun --nproc_per_node P -m thresher.trainer ...`` (what ``thresher train`` launches)."""

import sys

from thresher.trainer.train import main

if __name__ == "__main__":
    sys.exit(main())
