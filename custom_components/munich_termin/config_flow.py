"""Config flow: the city's booking service, its watches, and the alerts."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from homeassistant.config_entries import (
    SOURCE_USER,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    ConfigSubentryFlow,
    OptionsFlow,
    SubentryFlowResult,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.data_entry_flow import section
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    BooleanSelector,
    DateSelector,
    DurationSelector,
    DurationSelectorConfig,
    EntitySelector,
    EntitySelectorConfig,
    NumberSelector,
    NumberSelectorConfig,
    NumberSelectorMode,
    SelectOptionDict,
    SelectSelector,
    SelectSelectorConfig,
    SelectSelectorMode,
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from homeassistant.util import dt as dt_util

if TYPE_CHECKING:
    # Home Assistant runs voluptuous as probatio (its compatible successor,
    # installed under the old name); this gives type checkers its types.
    import probatio as vol
else:
    import voluptuous as vol
from yarl import URL

from mta_client import (
    DEFAULT_BASE_URL,
    Catalogue,
    MTABlockedError,
    MTAClient,
    MTAConnectionError,
    MTAError,
    MTAInvalidResponseError,
    MTAMaintenanceError,
    MTARateLimitError,
    MTAValidationError,
)
from mta_client.exceptions import MTAProtocolError
from mta_client.telegram import (
    DEFAULT_API_URL,
    TelegramAuthError,
    TelegramError,
    TelegramSender,
)
from mta_client.watch import URGENCIES, TimeRange

from .const import (
    CONF_ALERT_BOOKING,
    CONF_ALERT_GONE,
    CONF_ALERT_NEW,
    CONF_AUTO_BOOK,
    CONF_BASE_URL,
    CONF_CONTACT,
    CONF_COUNT,
    CONF_CUSTOM_TEXTFIELD,
    CONF_CUSTOM_TEXTFIELD2,
    CONF_EMAIL,
    CONF_END_DATE,
    CONF_FAMILY_NAME,
    CONF_MIN_LEAD,
    CONF_NAME,
    CONF_NOTIFY_ENTITIES,
    CONF_OFFICE_IDS,
    CONF_SERVICE_ID,
    CONF_SERVICES,
    CONF_START_DATE,
    CONF_TELEGRAM_API_URL,
    CONF_TELEGRAM_CHAT_ID,
    CONF_TELEGRAM_TOKEN,
    CONF_TELEPHONE,
    CONF_TIME_RANGES,
    CONF_WEEKDAYS,
    CONF_WITHIN_DAYS,
    DEFAULT_WITHIN_DAYS,
    DOMAIN,
    LOGGER,
    SECTION_ADVANCED,
    SECTION_TELEGRAM,
    SUBENTRY_WATCH,
    WEEKDAYS,
)
from .coordinator import ISSUE_TELEGRAM
from .watches import (
    CONF_URGENCY,
    DEFAULT_URGENCY,
    ContactProblem,
    build_watch,
    check_contact,
    clean_contact,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .coordinator import MunichTerminConfigEntry

TITLE = "Munich Termin"


def _url(text: str) -> URL | None:
    """A usable http(s) URL, or None."""
    try:
        url = URL(text.strip())
    except ValueError:
        return None
    if url.scheme not in ("http", "https") or not url.host:
        return None
    return url


# Most specific first.
_CONNECTION_ERRORS: tuple[tuple[type[MTAError], str], ...] = (
    (MTABlockedError, "blocked"),
    (MTAMaintenanceError, "maintenance"),
    (MTARateLimitError, "rate_limited"),
    (MTAConnectionError, "cannot_connect"),
    (MTAInvalidResponseError, "invalid_response"),
    (MTAProtocolError, "invalid_response"),
)


async def _test_connection(hass: HomeAssistant, base_url: str) -> str | None:
    """Ask the server for its catalogue; the form error, or None when it works."""
    if _url(base_url) is None:
        return "invalid_url"
    client = MTAClient(session=async_get_clientsession(hass), base_url=base_url)
    try:
        catalogue = await client.get_catalogue()
    except MTAError as err:
        return next(
            (key for cls, key in _CONNECTION_ERRORS if isinstance(err, cls)),
            "unknown_response",
        )
    except Exception:  # noqa: BLE001 - the form says "unknown", the log says what
        LOGGER.exception("Unexpected error while testing the connection")
        return "unknown"
    if not catalogue.offices or not catalogue.services:
        return "invalid_response"
    return None


async def _test_telegram(hass: HomeAssistant, token: str, api_url: str) -> str | None:
    """Check a bot token with ``getMe``; the form error, or None."""
    if _url(api_url) is None:
        return "invalid_api_url"
    sender = TelegramSender(
        token=token, session=async_get_clientsession(hass), api_url=api_url
    )
    try:
        await sender.get_me()
    except TelegramAuthError:
        return "invalid_token"
    except TelegramError:
        return "telegram_cannot_connect"
    finally:
        await sender.aclose()
    return None


def _url_selector() -> TextSelector:
    return TextSelector(TextSelectorConfig(type=TextSelectorType.URL))


class MunichTerminConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up the city's booking service (one entry)."""

    VERSION = 1

    async def async_step_user(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Test the connection, then create the entry."""
        errors: dict[str, str] = {}
        if user_input is not None:
            advanced = user_input.get(SECTION_ADVANCED) or {}
            base_url = (advanced.get(CONF_BASE_URL) or DEFAULT_BASE_URL).strip()
            if (error := await _test_connection(self.hass, base_url)) is None:
                return self.async_create_entry(
                    title=TITLE, data={CONF_BASE_URL: base_url}
                )
            errors["base"] = error
        schema = vol.Schema(
            {
                vol.Required(SECTION_ADVANCED): section(
                    vol.Schema({vol.Optional(CONF_BASE_URL): _url_selector()}),
                    {"collapsed": True},
                )
            }
        )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(schema, user_input or {}),
            errors=errors,
            description_placeholders={"default_url": DEFAULT_BASE_URL},
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Point the entry at another server."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            base_url = user_input[CONF_BASE_URL].strip()
            if (error := await _test_connection(self.hass, base_url)) is None:
                # The update listener reloads the entry.
                return self.async_update_and_abort(
                    entry,
                    data_updates={CONF_BASE_URL: base_url},
                    reason="reconfigure_successful",
                )
            errors["base"] = error
        schema = vol.Schema({vol.Required(CONF_BASE_URL): _url_selector()})
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=self.add_suggested_values_to_schema(
                schema, user_input or dict(entry.data)
            ),
            errors=errors,
            description_placeholders={"default_url": DEFAULT_BASE_URL},
        )

    async def async_step_reauth(
        self,
        entry_data: Mapping[str, Any],  # noqa: ARG002
    ) -> ConfigFlowResult:
        """Telegram rejected the bot token (the alert forwarder asks)."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new bot token and check it."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            token = user_input[CONF_TELEGRAM_TOKEN].strip()
            api_url = entry.options.get(CONF_TELEGRAM_API_URL) or DEFAULT_API_URL
            if (error := await _test_telegram(self.hass, token, api_url)) is None:
                ir.async_delete_issue(self.hass, DOMAIN, ISSUE_TELEGRAM)
                return self.async_update_and_abort(
                    entry,
                    options={**entry.options, CONF_TELEGRAM_TOKEN: token},
                    reason="reauth_successful",
                )
            errors["base"] = error
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_TELEGRAM_TOKEN): TextSelector(
                        TextSelectorConfig(type=TextSelectorType.PASSWORD)
                    )
                }
            ),
            errors=errors,
        )

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:  # noqa: ARG004
        """Alert forwarding."""
        return AlertOptionsFlow()

    @classmethod
    @callback
    def async_get_supported_subentry_types(
        cls,
        config_entry: ConfigEntry,  # noqa: ARG003
    ) -> dict[str, type[ConfigSubentryFlow]]:
        """Watches are subentries."""
        return {SUBENTRY_WATCH: WatchSubentryFlow}


# --- options: alerts -------------------------------------------------------------


class AlertOptionsFlow(OptionsFlow):
    """Where alerts go, and which."""

    async def async_step_init(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Notify entities, or a Telegram bot directly; the kinds of alerts."""
        errors: dict[str, str] = {}
        if user_input is not None:
            telegram = user_input.get(SECTION_TELEGRAM) or {}
            token = (telegram.get(CONF_TELEGRAM_TOKEN) or "").strip()
            chat_id = (telegram.get(CONF_TELEGRAM_CHAT_ID) or "").strip()
            api_url = (telegram.get(CONF_TELEGRAM_API_URL) or DEFAULT_API_URL).strip()
            if token and not chat_id:
                errors["base"] = "chat_id_required"
            elif chat_id and not token:
                errors["base"] = "token_required"
            elif token and (error := await _test_telegram(self.hass, token, api_url)):
                errors["base"] = error
            if not errors:
                options: dict[str, Any] = {
                    CONF_NOTIFY_ENTITIES: list(
                        user_input.get(CONF_NOTIFY_ENTITIES) or []
                    ),
                    CONF_ALERT_NEW: user_input[CONF_ALERT_NEW],
                    CONF_ALERT_GONE: user_input[CONF_ALERT_GONE],
                    CONF_ALERT_BOOKING: user_input[CONF_ALERT_BOOKING],
                }
                if token:
                    options |= {
                        CONF_TELEGRAM_TOKEN: token,
                        CONF_TELEGRAM_CHAT_ID: chat_id,
                        CONF_TELEGRAM_API_URL: api_url,
                    }
                return self.async_create_entry(data=options)
        current = self.config_entry.options
        suggested = user_input or {
            CONF_NOTIFY_ENTITIES: current.get(CONF_NOTIFY_ENTITIES, []),
            CONF_ALERT_NEW: current.get(CONF_ALERT_NEW, True),
            CONF_ALERT_GONE: current.get(CONF_ALERT_GONE, False),
            CONF_ALERT_BOOKING: current.get(CONF_ALERT_BOOKING, True),
            SECTION_TELEGRAM: {
                key: current[key]
                for key in (
                    CONF_TELEGRAM_TOKEN,
                    CONF_TELEGRAM_CHAT_ID,
                    CONF_TELEGRAM_API_URL,
                )
                if key in current
            },
        }
        schema = vol.Schema(
            {
                vol.Optional(CONF_NOTIFY_ENTITIES): EntitySelector(
                    EntitySelectorConfig(domain="notify", multiple=True)
                ),
                vol.Required(SECTION_TELEGRAM): section(
                    vol.Schema(
                        {
                            vol.Optional(CONF_TELEGRAM_TOKEN): TextSelector(
                                TextSelectorConfig(type=TextSelectorType.PASSWORD)
                            ),
                            vol.Optional(CONF_TELEGRAM_CHAT_ID): TextSelector(),
                            vol.Optional(
                                CONF_TELEGRAM_API_URL, default=DEFAULT_API_URL
                            ): _url_selector(),
                        }
                    ),
                    {"collapsed": not current.get(CONF_TELEGRAM_TOKEN)},
                ),
                vol.Required(CONF_ALERT_NEW, default=True): BooleanSelector(),
                vol.Required(CONF_ALERT_GONE, default=False): BooleanSelector(),
                vol.Required(CONF_ALERT_BOOKING, default=True): BooleanSelector(),
            }
        )
        return self.async_show_form(
            step_id="init",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )


# --- subentries: watches ---------------------------------------------------------


def _padded(text: str) -> str:
    """``8:00-12:00`` as ``08:00-12:00`` (the library wants two-digit hours)."""
    return "-".join(
        part.strip().zfill(5) if ":" in part else part for part in text.split("-")
    )


def _weekday_selector() -> SelectSelector:
    return SelectSelector(
        SelectSelectorConfig(
            options=list(WEEKDAYS),
            multiple=True,
            translation_key="weekday",
            mode=SelectSelectorMode.LIST,
        )
    )


def _urgency_selector() -> SelectSelector:
    return SelectSelector(
        SelectSelectorConfig(
            options=list(URGENCIES),
            translation_key="urgency",
            mode=SelectSelectorMode.LIST,
        )
    )


def _text(kind: TextSelectorType = TextSelectorType.TEXT) -> TextSelector:
    return TextSelector(TextSelectorConfig(type=kind))


class WatchSubentryFlow(ConfigSubentryFlow):
    """Add or change a watch: services, then offices and filters, then booking."""

    def __init__(self) -> None:
        """Start with an empty watch."""
        self._data: dict[str, Any] = {}
        self._name = ""
        self._catalogue: Catalogue | None = None

    @property
    def _is_new(self) -> bool:
        return self.source == SOURCE_USER

    async def _start(self) -> SubentryFlowResult | None:
        """Abort unless the entry runs; fetch the catalogue."""
        entry: MunichTerminConfigEntry = self._get_entry()
        if entry.state is not ConfigEntryState.LOADED:
            return self.async_abort(reason="entry_not_loaded")
        try:
            self._catalogue = await entry.runtime_data.client.get_catalogue()
        except MTAError:
            return self.async_abort(reason="cannot_connect")
        return None

    async def async_step_user(
        self,
        user_input: dict[str, Any] | None = None,  # noqa: ARG002
    ) -> SubentryFlowResult:
        """A new watch."""
        if (abort := await self._start()) is not None:
            return abort
        return await self.async_step_services()

    async def async_step_reconfigure(
        self,
        user_input: dict[str, Any] | None = None,  # noqa: ARG002
    ) -> SubentryFlowResult:
        """Change a watch (the form starts with its current settings)."""
        if (abort := await self._start()) is not None:
            return abort
        subentry = self._get_reconfigure_subentry()
        self._data = dict(subentry.data)
        self._name = subentry.title
        return await self.async_step_services()

    # step 1: what to book

    async def async_step_services(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The services, from the live catalogue."""
        catalogue = self._catalogue
        assert catalogue is not None  # noqa: S101 - set by _start
        errors: dict[str, str] = {}
        if user_input is not None:
            chosen = [int(s) for s in user_input[CONF_SERVICES]]
            if not chosen:
                errors[CONF_SERVICES] = "no_services"
            elif not catalogue.offices_offering(chosen):
                errors[CONF_SERVICES] = "no_office"
            else:
                previous = {
                    s[CONF_SERVICE_ID]: s[CONF_COUNT]
                    for s in self._data.get(CONF_SERVICES, [])
                }
                self._data[CONF_SERVICES] = [
                    {CONF_SERVICE_ID: s, CONF_COUNT: previous.get(s, 1)}
                    for s in sorted(chosen)
                ]
                self._name = user_input.get(CONF_NAME, "").strip() or ", ".join(
                    self._service_name(s) for s in sorted(chosen)
                )
                if self._countable():
                    return await self.async_step_counts()
                return await self.async_step_filters()
        options = [
            SelectOptionDict(value=str(s.id), label=s.name)
            for s in sorted(catalogue.services, key=lambda s: s.name)
            if catalogue.offices_offering([s.id])
        ]
        schema = vol.Schema(
            {
                vol.Optional(CONF_NAME): _text(),
                vol.Required(CONF_SERVICES): SelectSelector(
                    SelectSelectorConfig(
                        options=options,
                        multiple=True,
                        mode=SelectSelectorMode.DROPDOWN,
                        sort=True,
                    )
                ),
            }
        )
        suggested = user_input or {
            CONF_NAME: self._name,
            CONF_SERVICES: [
                str(s[CONF_SERVICE_ID]) for s in self._data.get(CONF_SERVICES, [])
            ],
        }
        return self.async_show_form(
            step_id="services",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
        )

    def _service_name(self, service_id: int) -> str:
        assert self._catalogue is not None  # noqa: S101
        service = self._catalogue.service(service_id)
        return service.name if service else str(service_id)

    def _countable(self) -> list[tuple[str, int, int]]:
        """(field name, service id, most allowed) of the services with counts."""
        assert self._catalogue is not None  # noqa: S101
        result = []
        for item in self._data[CONF_SERVICES]:
            service = self._catalogue.service(item[CONF_SERVICE_ID])
            if service is not None and service.max_quantity > 1:
                result.append((service.name, service.id, service.max_quantity))
        return result

    # step 1b: how many of each

    async def async_step_counts(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """How many people (or documents) per service."""
        countable = self._countable()
        if user_input is not None:
            counts = {sid: int(user_input[name]) for name, sid, _ in countable}
            for item in self._data[CONF_SERVICES]:
                item[CONF_COUNT] = counts.get(item[CONF_SERVICE_ID], 1)
            return await self.async_step_filters()
        current = {s[CONF_SERVICE_ID]: s[CONF_COUNT] for s in self._data[CONF_SERVICES]}
        schema = vol.Schema(
            {
                vol.Required(name, default=min(current.get(sid, 1), most)): (
                    NumberSelector(
                        NumberSelectorConfig(
                            min=1, max=most, step=1, mode=NumberSelectorMode.BOX
                        )
                    )
                )
                for name, sid, most in countable
            }
        )
        return self.async_show_form(step_id="counts", data_schema=schema)

    # step 2: where and when

    async def async_step_filters(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The offices offering all services, the dates, days and times; the urgency."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = self._read_filters(user_input)
            if not errors:
                return await self.async_step_booking()
        catalogue = self._catalogue
        assert catalogue is not None  # noqa: S101
        service_ids = [s[CONF_SERVICE_ID] for s in self._data[CONF_SERVICES]]
        offices = catalogue.offices_offering(service_ids)
        options = [
            SelectOptionDict(value=str(o.id), label=o.name)
            for o in sorted(offices, key=lambda o: o.name)
        ]
        schema = vol.Schema(
            {
                vol.Required(CONF_OFFICE_IDS): SelectSelector(
                    SelectSelectorConfig(
                        options=options, multiple=True, mode=SelectSelectorMode.LIST
                    )
                ),
                vol.Optional(CONF_WITHIN_DAYS): NumberSelector(
                    NumberSelectorConfig(
                        min=0, max=365, step=1, mode=NumberSelectorMode.BOX
                    )
                ),
                vol.Optional(CONF_START_DATE): DateSelector(),
                vol.Optional(CONF_END_DATE): DateSelector(),
                vol.Required(CONF_WEEKDAYS): _weekday_selector(),
                vol.Optional(CONF_TIME_RANGES): TextSelector(
                    TextSelectorConfig(multiple=True)
                ),
                vol.Optional(CONF_MIN_LEAD): DurationSelector(
                    DurationSelectorConfig(enable_day=True)
                ),
                vol.Required(CONF_URGENCY, default=DEFAULT_URGENCY): (
                    _urgency_selector()
                ),
            }
        )
        offered = {str(o.id) for o in offices}
        suggested = user_input or {
            CONF_OFFICE_IDS: [
                str(o) for o in self._data.get(CONF_OFFICE_IDS, []) if str(o) in offered
            ]
            or sorted(offered),
            CONF_WITHIN_DAYS: self._data.get(CONF_WITHIN_DAYS, DEFAULT_WITHIN_DAYS)
            if self._is_new or CONF_WITHIN_DAYS in self._data
            else None,
            CONF_START_DATE: self._data.get(CONF_START_DATE),
            CONF_END_DATE: self._data.get(CONF_END_DATE),
            CONF_WEEKDAYS: self._data.get(CONF_WEEKDAYS, list(WEEKDAYS[:5])),
            CONF_TIME_RANGES: self._data.get(CONF_TIME_RANGES, []),
            CONF_MIN_LEAD: self._data.get(CONF_MIN_LEAD),
            # Watches from before urgency was asked for run as normal.
            CONF_URGENCY: self._data.get(CONF_URGENCY, DEFAULT_URGENCY),
        }
        return self.async_show_form(
            step_id="filters",
            data_schema=self.add_suggested_values_to_schema(
                schema, {k: v for k, v in suggested.items() if v is not None}
            ),
            errors=errors,
        )

    def _read_filters(self, user_input: dict[str, Any]) -> dict[str, str]:
        """Take the filters into the watch; the form errors, if any."""
        errors: dict[str, str] = {}
        offices = [int(o) for o in user_input[CONF_OFFICE_IDS]]
        if not offices:
            errors[CONF_OFFICE_IDS] = "no_offices"
        weekdays = [d for d in WEEKDAYS if d in user_input[CONF_WEEKDAYS]]
        if not weekdays:
            errors[CONF_WEEKDAYS] = "no_weekdays"
        ranges: list[str] = []
        for text in user_input.get(CONF_TIME_RANGES) or []:
            if not text.strip():
                continue
            try:
                parsed = TimeRange.parse(_padded(text))
            except ValueError:
                errors[CONF_TIME_RANGES] = "invalid_time_range"
                break
            ranges.append(f"{parsed.start:%H:%M}-{parsed.end:%H:%M}")
        start = user_input.get(CONF_START_DATE)
        end = user_input.get(CONF_END_DATE)
        if start and end and date.fromisoformat(end) < date.fromisoformat(start):
            errors[CONF_END_DATE] = "end_before_start"
        if errors:
            return errors
        within = user_input.get(CONF_WITHIN_DAYS)
        data = {
            key: value
            for key, value in self._data.items()
            if key not in (CONF_WITHIN_DAYS, CONF_START_DATE, CONF_END_DATE)
        }
        data |= {
            CONF_OFFICE_IDS: sorted(offices),
            CONF_WEEKDAYS: weekdays,
            CONF_TIME_RANGES: ranges,
            CONF_MIN_LEAD: user_input.get(CONF_MIN_LEAD) or {},
            CONF_URGENCY: user_input.get(CONF_URGENCY) or DEFAULT_URGENCY,
        }
        if within is not None:
            data[CONF_WITHIN_DAYS] = int(within)
        if start:
            data[CONF_START_DATE] = start
        if end:
            data[CONF_END_DATE] = end
        try:
            watch = build_watch("check", {**data, CONF_CONTACT: None})
        except MTAValidationError:
            return {"base": "invalid_watch"}
        if watch.window(dt_util.utcnow()) is None:
            return {"base": "window_over"}
        self._data = data
        return {}

    # step 3: booking

    async def async_step_booking(
        self, user_input: dict[str, Any] | None = None
    ) -> SubentryFlowResult:
        """The person's data, checked as the chosen offices will, and auto-booking."""
        catalogue = self._catalogue
        assert catalogue is not None  # noqa: S101
        offices = [
            office
            for office_id in self._data[CONF_OFFICE_IDS]
            if (office := catalogue.office(office_id)) is not None
        ]
        errors: dict[str, str] = {}
        placeholders = self._booking_placeholders(offices)
        if user_input is not None:
            contact = clean_contact(user_input)
            auto_book = bool(user_input.get(CONF_AUTO_BOOK))
            try:
                watch = build_watch("check", {**self._data, CONF_CONTACT: contact})
                if watch.contact is not None:
                    check_contact(watch.contact, offices)
            except ContactProblem as problem:
                errors[problem.field] = problem.error
                placeholders["office"] = problem.office
            else:
                if auto_book and watch.contact is None:
                    errors[CONF_AUTO_BOOK] = "auto_book_needs_contact"
            if not errors:
                data = {**self._data, CONF_CONTACT: contact, CONF_AUTO_BOOK: auto_book}
                return self._finish(data)
        suggested = user_input or {
            **self._data.get(CONF_CONTACT, {}),
            CONF_AUTO_BOOK: self._data.get(CONF_AUTO_BOOK, False),
        }
        schema = vol.Schema(
            {
                vol.Optional(CONF_FAMILY_NAME): _text(),
                vol.Optional(CONF_EMAIL): _text(TextSelectorType.EMAIL),
                vol.Optional(CONF_TELEPHONE): _text(TextSelectorType.TEL),
                vol.Optional(CONF_CUSTOM_TEXTFIELD): _text(),
                vol.Optional(CONF_CUSTOM_TEXTFIELD2): _text(),
                vol.Required(CONF_AUTO_BOOK, default=False): BooleanSelector(),
            }
        )
        return self.async_show_form(
            step_id="booking",
            data_schema=self.add_suggested_values_to_schema(schema, suggested),
            errors=errors,
            description_placeholders=placeholders,
        )

    @staticmethod
    def _booking_placeholders(offices: list[Any]) -> dict[str, str]:
        """What the chosen offices ask for, for the step's description."""
        scopes = [o.scope for o in offices if o.scope is not None]

        def names(flag: str) -> str:
            return (
                ", ".join(o.name for o in offices if o.scope and getattr(o.scope, flag))
                or "-"
            )

        labels = {
            label
            for scope in scopes
            for label in (scope.custom_textfield_label, scope.custom_textfield2_label)
            if label
        }
        return {
            "email_required": names("email_required"),
            "telephone_required": names("telephone_required"),
            "custom_labels": ", ".join(sorted(labels)) or "-",
            "office": "",
        }

    def _finish(self, data: dict[str, Any]) -> SubentryFlowResult:
        if self._is_new:
            return self.async_create_entry(title=self._name, data=data)
        # The update listener reloads the entry (core pattern).
        return self.async_update_and_abort(
            self._get_entry(),
            self._get_reconfigure_subentry(),
            title=self._name,
            data=data,
        )
