"""`python -m rwe_assets.cli`: the `rwe` command."""

import sys

from rwe_assets.cli import main

sys.exit(main())
