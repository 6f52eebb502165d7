"""Run the ``mta`` command line: ``python -m mta_client``."""

from mta_client.cli import main

raise SystemExit(main())
