"""``python -m engine``: the build and search command line."""

from engine.cli import main

raise SystemExit(main())
