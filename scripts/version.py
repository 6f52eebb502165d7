#!/usr/bin/env python3
"""Print the project's version, or set it everywhere it must be written.

scripts/version.py              print it (from mta_client/_version.py)
scripts/version.py --set 0.2.0  write it to mta_client/_version.py and to
                                the integration's manifest.json (its
                                version and its mta-client pin)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
import re
import sys

ROOT = Path(__file__).resolve().parent.parent
VERSION_FILE = ROOT / "mta_client" / "_version.py"
MANIFEST = ROOT / "custom_components" / "munich_termin" / "manifest.json"
PATTERN = re.compile(r'^__version__ = "([^"]+)"$', re.MULTILINE)
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def current() -> str:
    """The version written in mta_client/_version.py."""
    found = PATTERN.search(VERSION_FILE.read_text(encoding="utf-8"))
    if found is None:
        sys.exit(f"no __version__ line in {VERSION_FILE}")
    return found.group(1)


def set_version(version: str) -> None:
    """Write ``version`` to the library and the integration's manifest."""
    if not SEMVER.match(version):
        sys.exit(f"--set: {version!r} is not X.Y.Z")
    text = VERSION_FILE.read_text(encoding="utf-8")
    VERSION_FILE.write_text(
        PATTERN.sub(f'__version__ = "{version}"', text), encoding="utf-8"
    )
    manifest = json.loads(MANIFEST.read_text(encoding="utf-8"))
    manifest["version"] = version
    manifest["requirements"] = [
        f"mta-client=={version}" if req.startswith("mta-client") else req
        for req in manifest["requirements"]
    ]
    MANIFEST.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def main() -> None:
    """Run the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", metavar="X.Y.Z", dest="version")
    args = parser.parse_args()
    if args.version:
        set_version(args.version)
    print(current())


if __name__ == "__main__":
    main()
