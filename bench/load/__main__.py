"""``python -m bench.load``: see the package's docstring."""

import sys

from bench.load.cli import main

sys.exit(main())
