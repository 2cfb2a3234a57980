#!/usr/bin/env python3
"""Benchmark tokensmith against its peers: ``python bench/run.py [--quick|--smoke]``.

See bench/README.md. Needs wrk (``apt-get install -y wrk``); installs the peers itself
under bench/.work/ from PyPI and npm.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib.cli import main

if __name__ == "__main__":
    sys.exit(main())
