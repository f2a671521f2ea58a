"""Score REACT predictions with the official metrics (REACT 2023/2024: FRC, FRD, S-MSE, FRVar, FRDvs,
TLCC; REACT 2025/2026 / MARS: FRC, FRD, TLCC, S-MSE, FRVar, MAE).

    python evaluation.py --data-dir D --pred-dir P --split test [--out metrics.json]
        [--workers N] [--device cpu|cuda] [--tlcc-samples first|all] [--metric-set auto|2024|2025]
        [--layout auto|react|mars] [--directions both|speaker]
"""

import sys

from evaluation.cli import main

if __name__ == "__main__":
    sys.exit(main())
