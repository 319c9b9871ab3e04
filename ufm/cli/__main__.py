"""``python -m ufm.cli ...``: the ``ufm`` command."""

import sys

from ufm.cli._main import main

sys.exit(main())
