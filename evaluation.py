"""Score REACT predictions with the official metrics (FRC, FRD, S-MSE, FRVar, FRDvs, TLCC).

    python evaluation.py --data-dir D --pred-dir P --split test [--out metrics.json]
        [--workers N] [--device cpu|cuda] [--tlcc-samples first|all]
"""

import sys

from evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
