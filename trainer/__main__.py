"""``torchrun --nproc_per_node P -m trainer ...`` (what ``thresher train`` launches)."""

import sys

from trainer.train import main

if __name__ == "__main__":
    sys.exit(main())
