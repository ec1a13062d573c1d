"""`python -m central` = `tracescan-central`."""

import sys

from central.cli import main

sys.exit(main())
