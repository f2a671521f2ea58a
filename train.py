"""Train or test a task on the one engine: ``react train`` (react/train.py) as a script, so that
``accelerate launch train.py ...`` and ``python train.py ...`` work as in the field's code.

    accelerate launch train.py --config configs/regnn.yaml [key=value ...]
    python train.py --config configs/regnn_tiny.yaml mode=test checkpoint=runs/x/checkpoints/best
"""

import sys

from react.train import main

if __name__ == "__main__":
    sys.exit(main())
