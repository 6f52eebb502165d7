"""What HACS, the Marketplace and hassfest would check, run here.

hassfest and the HACS action cannot run on this machine (they are a Docker
image and a GitHub action), so this checks what they check that can be
checked offline: the manifest's keys and order, hacs.json's keys, the
version and the requirement pin, the brand image, the translation files'
parity with each other and with the keys the code uses, and services.yaml
and icons.json against what the integration really registers.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
from typing import Any

import pytest
import yaml

from mta_client._version import __version__

ROOT = Path(__file__).resolve().parents[2]
INTEGRATION = ROOT / "custom_components" / "munich_termin"
LANGUAGES = ("en", "de")

# hassfest's manifest schema for custom integrations (script/hassfest/manifest.py)
MANIFEST_REQUIRED = {
    "domain",
    "name",
    "codeowners",
    "documentation",
    "issue_tracker",
    "version",
    "config_flow",
    "integration_type",
    "iot_class",
    "requirements",
}
MANIFEST_ALLOWED = MANIFEST_REQUIRED | {
    "after_dependencies",
    "bluetooth",
    "categories",
    "connectivity",
    "dependencies",
    "dhcp",
    "homekit",
    "import_executor",
    "loggers",
    "mqtt",
    "quality_scale",
    "single_config_entry",
    "ssdp",
    "usb",
    "zeroconf",
}
# hacs/integration validate.py HACS_MANIFEST_JSON_SCHEMA (PREVENT_EXTRA)
HACS_ALLOWED = {
    "content_in_root",
    "country",
    "filename",
    "hacs",
    "hide_default_branch",
    "homeassistant",
    "name",
    "persistent_directory",
    "render_readme",
    "zip_release",
}


def _json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def test_manifest_keys_order_and_version() -> None:
    manifest = _json(INTEGRATION / "manifest.json")
    assert manifest["domain"] == INTEGRATION.name
    assert set(manifest) >= MANIFEST_REQUIRED, MANIFEST_REQUIRED - set(manifest)
    assert set(manifest) <= MANIFEST_ALLOWED, set(manifest) - MANIFEST_ALLOWED
    keys = list(manifest)
    # hassfest: domain, name, then the rest sorted.
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert manifest["version"] == __version__
    assert f"mta-client=={__version__}" in manifest["requirements"]
    assert manifest["iot_class"] == "cloud_polling"
    assert manifest["integration_type"] == "service"
    assert manifest["config_flow"] is True
    assert all(owner.startswith("@") for owner in manifest["codeowners"])


def test_hacs_json() -> None:
    hacs = _json(ROOT / "hacs.json")
    assert "name" in hacs
    assert set(hacs) <= HACS_ALLOWED, set(hacs) - HACS_ALLOWED
    assert re.fullmatch(r"\d{4}\.\d{1,2}\.\d+", hacs["homeassistant"])
    assert tuple(int(p) for p in hacs["homeassistant"].split(".")) >= (2026, 10, 0)
    if hacs.get("zip_release"):
        assert hacs.get("filename") == "munich_termin.zip"


def test_brand_images_are_png() -> None:
    for name in ("icon.png", "logo.png"):
        data = (INTEGRATION / "brand" / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), name


def _key_paths(tree: Any, prefix: str = "") -> set[str]:
    if not isinstance(tree, dict):
        return {prefix}
    paths: set[str] = set()
    for key, value in tree.items():
        paths |= _key_paths(value, f"{prefix}.{key}" if prefix else key)
    return paths


def _translations(language: str) -> dict[str, Any]:
    return dict(_json(INTEGRATION / "translations" / f"{language}.json"))


def test_every_language_has_the_same_keys() -> None:
    english = _key_paths(_translations("en"))
    for language in LANGUAGES[1:]:
        other = _key_paths(_translations(language))
        assert english - other == set(), f"missing in {language}"
        assert other - english == set(), f"only in {language}"


def _code_translation_keys() -> set[str]:
    keys: set[str] = set()
    for path in INTEGRATION.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        keys |= set(re.findall(r"translation_key\s*=\s*\"([a-z0-9_]+)\"", text))
    return keys


def test_every_translation_key_of_the_code_is_translated() -> None:
    used = _code_translation_keys()
    assert used, "the integration uses no translation keys?"
    for language in LANGUAGES:
        names = {
            part
            for path in _key_paths(_translations(language))
            for part in path.split(".")
        }
        assert used - names == set(), f"{language} lacks {sorted(used - names)}"


def test_placeholders_match_between_languages() -> None:
    english = _translations("en")
    for language in LANGUAGES[1:]:
        other = _translations(language)
        for path in _key_paths(english):
            en_text, other_text = _lookup(english, path), _lookup(other, path)
            if isinstance(en_text, str) and isinstance(other_text, str):
                assert set(re.findall(r"{(\w+)}", en_text)) == set(
                    re.findall(r"{(\w+)}", other_text)
                ), f"{language}: {path}"


def _lookup(tree: dict[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@pytest.mark.usefixtures("enable_custom_integrations")
async def test_services_yaml_icons_and_translations_match_the_registered_actions(
    hass: Any,
) -> None:
    from homeassistant.setup import async_setup_component  # noqa: PLC0415

    assert await async_setup_component(hass, "munich_termin", {})
    await hass.async_block_till_done()
    registered = set(hass.services.async_services_for_domain("munich_termin"))
    described = set(yaml.safe_load((INTEGRATION / "services.yaml").read_text()))
    icons = _json(INTEGRATION / "icons.json")
    assert registered == described
    assert set(icons.get("services", {})) == registered
    for language in LANGUAGES:
        assert set(_translations(language)["services"]) == registered, language
        for name, fields in yaml.safe_load(
            (INTEGRATION / "services.yaml").read_text()
        ).items():
            declared = set((fields or {}).get("fields", {}))
            for section in (fields or {}).get("fields", {}).values():
                declared |= set(
                    section.get("fields", {}) if isinstance(section, dict) else {}
                )
            translated = set(
                _translations(language)["services"][name].get("fields", {})
            )
            translated |= {
                f
                for s in _translations(language)["services"][name]
                .get("sections", {})
                .values()
                for f in s.get("fields", {})
            }
            assert declared <= translated | set(
                _translations(language)["services"][name].get("sections", {})
            ), f"{language}: {name}"


def test_entity_icons_have_translations() -> None:
    icons = _json(INTEGRATION / "icons.json")
    english = _translations("en").get("entity", {})
    for platform, entities in icons.get("entity", {}).items():
        for key in entities:
            assert key in english.get(platform, {}), (
                f"icon for untranslated {platform}.{key}"
            )
