"""``python -m benchmarks run [--quick] [--only NAME,...] [--data-dir DIR] [--device DEVICE] [--out DIR]``."""
import sys

from .runner import main

sys.exit(main())
