"""``python -m ims_nb``: the same as the ``ims-nb`` command."""

from __future__ import annotations

import sys

from ims_nb.cli import main

sys.exit(main())
