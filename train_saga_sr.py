#!/usr/bin/env python
"""The seeds' entry point: `python train_saga_sr.py --train_dir ... --model_config ...` is `saga-sr train ...`."""

import sys

from saga_sr.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
