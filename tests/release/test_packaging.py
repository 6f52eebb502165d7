"""The distribution builds, passes ``twine check``, installs and imports."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys
import venv
import zipfile

import pytest

from mta_client._version import __version__

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", name="dist")
def dist_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--no-isolation",
            "--outdir",
            str(out),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def test_wheel_and_sdist_are_built_and_pass_twine(dist: Path) -> None:
    wheels = list(dist.glob(f"mta_client-{__version__}-*.whl"))
    sdists = list(dist.glob(f"mta_client-{__version__}.tar.gz"))
    assert len(wheels) == 1
    assert len(sdists) == 1
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "twine",
            "check",
            "--strict",
            *map(str, wheels + sdists),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "mta_client/py.typed" in names
    assert "mta_client/simulator/data/catalogue.json" in names
    # The wheel is the library: no tests, no integration, no dev tools.
    assert not [
        n for n in names if n.startswith(("tests/", "custom_components/", "devtools/"))
    ]
    assert any(n.endswith("licenses/LICENSE") for n in names)


def test_wheel_installs_into_a_fresh_venv_and_imports(
    dist: Path, tmp_path: Path
) -> None:
    target = tmp_path / "venv"
    venv.create(target, with_pip=True)
    python = target / "bin" / "python"
    wheel = next(dist.glob("*.whl"))
    # Its dependencies come from the package index, as for a user.
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    result = subprocess.run(
        [
            str(python),
            "-c",
            (
                "import mta_client, mta_client.cli; from mta_client import MTAClient;"
                "print(mta_client.client.VERSION)"
            ),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == __version__
    help_text = subprocess.run(
        [str(target / "bin" / "mta"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert "watch" in help_text
