"""`python -m srcgrad show|export|check module:function ...`: see srcgrad/cli.py."""

import sys

from srcgrad.cli import main

sys.exit(main())
