"""``python -m voxmesh`` is the ``voxmesh`` command."""

from __future__ import annotations

import sys

from voxmesh.cli import main

sys.exit(main())
