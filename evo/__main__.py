"""``python -m evo``: the same as the ``evo`` command."""

import sys

from evo.cli import main

sys.exit(main())
