"""``python -m dohawatch``."""

import sys

from dohawatch.cli import main

sys.exit(main())
