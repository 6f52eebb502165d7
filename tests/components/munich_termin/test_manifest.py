"""A local stand-in for hassfest and the HACS action: files agree with each other."""

from __future__ import annotations

import json
from pathlib import Path
import re
import struct
from typing import Any

import yaml

from mta_client._version import __version__

ROOT = Path(__file__).parents[3]
INTEGRATION = ROOT / "custom_components" / "munich_termin"
EN = json.loads((INTEGRATION / "translations" / "en.json").read_text(encoding="utf-8"))
DE = json.loads((INTEGRATION / "translations" / "de.json").read_text(encoding="utf-8"))
ALL_RULES = 54


def _keys(tree: dict[str, Any], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for key, value in tree.items():
        found.add(prefix + key)
        if isinstance(value, dict):
            found |= _keys(value, f"{prefix}{key}.")
    return found


def test_manifest() -> None:
    manifest = json.loads((INTEGRATION / "manifest.json").read_text(encoding="utf-8"))
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert manifest["domain"] == INTEGRATION.name
    # The library and the integration are released together.
    assert manifest["version"] == __version__
    assert manifest["requirements"] == [f"mta-client=={manifest['version']}"]
    assert manifest["iot_class"] == "cloud_polling"
    assert manifest["integration_type"] == "service"
    assert manifest["single_config_entry"] is True
    assert manifest["config_flow"] is True
    for url in (manifest["documentation"], manifest["issue_tracker"]):
        assert url.startswith("https://github.com/munich-termin-automator/")


def test_hacs_json() -> None:
    hacs = json.loads((ROOT / "hacs.json").read_text(encoding="utf-8"))
    # Installed from the zip the release workflow attaches (zip_release).
    assert hacs == {
        "name": "Munich Termin",
        "homeassistant": "2026.10.0",
        "render_readme": True,
        "zip_release": True,
        "filename": "munich_termin.zip",
    }


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_brand_images() -> None:
    assert _png_size(INTEGRATION / "brand" / "icon.png") == (256, 256)
    assert _png_size(INTEGRATION / "brand" / "icon@2x.png") == (512, 512)
    width, height = _png_size(INTEGRATION / "brand" / "logo.png")
    assert 128 <= height <= 256
    assert width >= height


def test_english_and_german_say_the_same_things() -> None:
    assert _keys(EN) == _keys(DE)


def test_services_are_described() -> None:
    services = yaml.safe_load(
        (INTEGRATION / "services.yaml").read_text(encoding="utf-8")
    )
    icons = json.loads((INTEGRATION / "icons.json").read_text(encoding="utf-8"))
    assert set(services) == set(EN["services"]) == set(icons["services"])
    for name, service in services.items():
        assert set(service["fields"]) == set(EN["services"][name]["fields"])


def test_entities_have_names_and_icons() -> None:
    icons = json.loads((INTEGRATION / "icons.json").read_text(encoding="utf-8"))
    for platform, entities in icons["entity"].items():
        for key in entities:
            assert "name" in EN["entity"][platform][key], (platform, key)
    assert EN["entity"]["notify"]["alerts"]["name"] == "Munich Termin alerts"
    assert (
        DE["entity"]["notify"]["alerts"]["name"] == "Munich-Termin-Benachrichtigungen"
    )


def _code() -> str:
    return "\n".join(
        path.read_text(encoding="utf-8") for path in sorted(INTEGRATION.glob("*.py"))
    )


def test_every_raised_message_is_translated() -> None:
    used = set(re.findall(r'translation_key="([a-z_0-9]+)"', _code()))
    used |= set(re.findall(r'_invalid\(\s*"([a-z_0-9]+)"', _code()))
    errors = (ROOT / "custom_components/munich_termin/errors.py").read_text(
        encoding="utf-8"
    )
    used |= set(re.findall(r'"([a-z_]+)"\),', errors))
    coordinator = (INTEGRATION / "coordinator.py").read_text(encoding="utf-8")
    used |= set(re.findall(r'key = "([a-z_]+)"', coordinator))
    issues = set(re.findall(r'ISSUE_[A-Z_]+ = "([a-z_]+)"', _code()))
    assert issues <= set(EN["issues"])
    entities = {key for platform in EN["entity"].values() for key in platform}
    selectors = set(EN["selector"])
    missing = used - set(EN["exceptions"]) - issues - entities - selectors
    assert not missing


def test_every_flow_error_is_translated() -> None:
    flow = (INTEGRATION / "config_flow.py").read_text(encoding="utf-8")
    watches = (INTEGRATION / "watches.py").read_text(encoding="utf-8")
    known = (
        set(EN["config"]["error"])
        | set(EN["options"]["error"])
        | set(EN["config_subentries"]["watch"]["error"])
    )
    for key in re.findall(r'(?:errors\[[^\]]+\]|return) = ?"([a-z_0-9]+)"', flow):
        assert key in known, key
    for key in re.findall(r'"([a-z_0-9]+)"\)', flow):
        if key.endswith(("_connect", "_url", "_token", "_response", "blocked")):
            assert key in known, key
    subentry_errors = set(EN["config_subentries"]["watch"]["error"])
    for field in (
        "family_name",
        "email",
        "telephone",
        "custom_textfield",
        "custom_textfield2",
    ):
        assert f"invalid_{field}" in subentry_errors
    for field in ("email", "telephone", "custom_textfield", "custom_textfield2"):
        assert f"{field}_required" in subentry_errors
    for field in ("telephone", "custom_textfield", "custom_textfield2"):
        assert f"{field}_not_accepted" in subentry_errors
    assert "_required" in watches


def test_quality_scale_lists_every_rule() -> None:
    scale = yaml.safe_load(
        (INTEGRATION / "quality_scale.yaml").read_text(encoding="utf-8")
    )
    rules = scale["rules"]
    assert len(rules) == ALL_RULES
    for rule, status in rules.items():
        if isinstance(status, dict):
            assert status["status"] in {"done", "exempt", "todo"}, rule
            assert status.get("comment"), rule
        else:
            assert status in {"done", "todo"}, rule


def _steps() -> list[tuple[str, dict[str, Any]]]:
    flows = [
        ("config", EN["config"]["step"]),
        ("options", EN["options"]["step"]),
        ("watch", EN["config_subentries"]["watch"]["step"]),
    ]
    found = []
    for flow, steps in flows:
        for name, step in steps.items():
            found.append((f"{flow}.{name}", step))
            for section, inner in step.get("sections", {}).items():
                found.append((f"{flow}.{name}.{section}", inner))
    return found


def test_every_field_is_described() -> None:
    for where, step in _steps():
        assert set(step.get("data", {})) == set(step.get("data_description", {})), where
