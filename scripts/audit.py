#!/usr/bin/env python3
"""Audit the installed packages: fail on a known vulnerability with a fix.

Runs ``pip-audit`` (PyPI's advisory data) on .venv's installed set and fails
only when an advisory has a fixed version to move to: an advisory without a
fix is printed, since nothing can be done about it but wait.
"""

from __future__ import annotations

import json
from pathlib import Path
import subprocess
import sys
import tempfile


def main() -> int:
    """Run the audit; the exit code tells whether anything must be upgraded."""
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "audit.json"
        result = subprocess.run(  # noqa: S603 - our own tool, fixed arguments
            [
                str(Path(sys.executable).with_name("pip-audit")),
                "--vulnerability-service",
                "pypi",
                "--skip-editable",
                "--progress-spinner",
                "off",
                "--format",
                "json",
                "--output",
                str(report),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if not report.exists():
            # No advisory data (the package index unreachable): say so, loudly,
            # rather than fail the lint step for a network problem.
            print(
                f"audit: SKIPPED, pip-audit could not run:\n{result.stderr}",
                file=sys.stderr,
            )
            return 0
        data = json.loads(report.read_text(encoding="utf-8"))
    fixable = []
    for package in data.get("dependencies", []):
        for vuln in package.get("vulns", []):
            line = f"{package['name']} {package['version']}: {vuln['id']}"
            if vuln.get("fix_versions"):
                fixable.append(f"{line} (fixed in {', '.join(vuln['fix_versions'])})")
            else:
                print(f"audit: {line} has no fix yet", file=sys.stderr)
    for line in fixable:
        print(f"audit: {line}", file=sys.stderr)
    count = len(data.get("dependencies", []))
    print(f"audit: {count} packages, {len(fixable)} to upgrade")
    return 1 if fixable else 0


if __name__ == "__main__":
    sys.exit(main())
