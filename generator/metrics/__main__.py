"""``python -m generator.metrics``: see :mod:`generator.metrics.cli`."""

from __future__ import annotations

from generator.metrics.cli import main

raise SystemExit(main())
