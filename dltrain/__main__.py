"""`python -m dltrain` is the same as the `dltrain` command."""

import sys

from dltrain.cli import main

sys.exit(main())
