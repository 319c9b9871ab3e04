"""``python -m ufm ...``: the ``ufm`` command (:func:`ufm.cli.main`)."""

import sys

from ufm.cli import main

sys.exit(main())
