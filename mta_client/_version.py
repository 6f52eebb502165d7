"""The one place the version is written.

The distribution (pyproject.toml reads it), the ``User-Agent`` and the Home
Assistant integration's manifest (``scripts/version.py --set`` writes it
there, a test checks it) all take it from here.
"""

__version__ = "0.1.0"
