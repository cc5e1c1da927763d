"""``python -m benchmarks.drills.soak``: run the soak (or, with ``watcher`` first, its watcher process)."""

from __future__ import annotations

import sys

from benchmarks.drills.soak import main

sys.exit(main())
