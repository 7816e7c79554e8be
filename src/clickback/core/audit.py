"""What the audit log keeps of a change: who made it, to which row, and the row's fields before
and after (only those that changed). Pure: the store writes the record in the transaction of the
change itself (store/audit.py), so a change and its record are committed, or neither is."""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from clickback.core.accounts import Principal

MAX_ACTOR_LEN = 100
MAX_ACTION_LEN = 32
MAX_KIND_LEN = 32
MAX_REASON_LEN = 500
# before / after as JSON text: a URL template is the longest field (2048), so a whole offer fits;
# longer is cropped to a marker rather than refused (the change itself was valid).
MAX_STATE_LEN = 8000
BOOTSTRAP_ACTOR = "bootstrap key"
# Secrets are never copied into the log: that they changed is recorded, not their values.
SECRET_FIELDS = frozenset(
    {"token", "previous_token", "signing_secret", "password_hash", "key_hash", "secret"}
)
HIDDEN = "(hidden)"
# Columns holding JSON text (read whole, never queried): the log shows their structure.
JSON_COLUMNS = frozenset({"payouts", "custom_events", "terms", "cost", "events", "statuses", "status_map"})
# Bookkeeping that changes with every write, never a change in itself.
NOT_CHANGES = frozenset({"updated_at", "last_used_at"})


class Kind(StrEnum):
    ADVERTISER = "advertiser"
    OFFER = "offer"
    AFFILIATE = "affiliate"
    LINK = "link"
    DEAL = "deal"
    CAP = "cap"
    CONVERSION = "conversion"
    TEMPLATE = "outbound_template"
    # Users and their keys (the command line's, the API's and the pages' changes alike).
    USER = "user"
    # A rate has no number of its own (its key is base, quote and day): entity_id 0, the fields
    # name it.
    FX_RATE = "fx_rate"
    # An import of spend: entity_id the id of its first line in /api/costs/imports.
    SPEND_IMPORT = "spend_import"
    # An outbound delivery sent again (replayed).
    DELIVERY = "delivery"
    # A tracker's host paused or resumed: entity_id 0, the fields name it.
    DESTINATION = "destination"
    # An operator's report imported, and the column mapping an advertiser's reports are read
    # with (ADR 20); an item accepted is a conversion's change.
    RECONCILIATION = "reconciliation"
    RECONCILIATION_MAPPING = "reconciliation_mapping"


# The tables of the catalog, by the kind of their rows in the log.
KIND_OF_TABLE: Mapping[str, Kind] = {
    "advertisers": Kind.ADVERTISER,
    "offers": Kind.OFFER,
    "affiliates": Kind.AFFILIATE,
    "links": Kind.LINK,
}


@dataclass(frozen=True, slots=True)
class Actor:
    """Who changed something: a user (id and login at the time) or the bootstrap key."""

    name: str
    user_id: int | None = None


def actor_of(who: Principal) -> Actor:
    if who.user_id is None:
        return Actor(BOOTSTRAP_ACTOR)
    return Actor(who.login[:MAX_ACTOR_LEN], who.user_id)


# Changes made by the server itself (none yet by hand), e.g. `clickback` commands.
SYSTEM = Actor("system")
# What the command line's changes are recorded under, with the system user who ran it.
COMMAND_LINE = "command line"


def command_line(os_user: str) -> Actor:
    return Actor(f"{COMMAND_LINE} ({os_user})"[:MAX_ACTOR_LEN] if os_user else COMMAND_LINE)


@dataclass(frozen=True, slots=True)
class Change:
    actor: Actor
    kind: Kind
    entity_id: int
    action: str
    before: str | None  # JSON text of the fields that changed, as they were; None: created
    after: str | None  # ... as they are now; None: deleted
    reason: str | None = None


def change(
    actor: Actor,
    kind: Kind,
    entity_id: int,
    action: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    reason: str | None = None,
    keep: frozenset[str] = frozenset(),
) -> Change | None:
    """The record of a change from row `before` to row `after`, keeping the fields that differ
    (all of them for a creation or deletion); None when nothing changed: a PUT of the same value
    is no event worth a line. `keep`: fields kept beside those that changed, to name a row that
    has no number of its own (an exchange rate's pair and day)."""
    if before is not None and after is not None:
        names = [
            k
            for k in after
            if k in before and k not in NOT_CHANGES and _plain(k, before[k]) != _plain(k, after[k])
        ]
        if not names:
            return None
        names += [k for k in after if k in keep and k in before and k not in names]
        before, after = {k: before[k] for k in names}, {k: after[k] for k in names}
    return Change(
        actor=actor,
        kind=kind,
        entity_id=entity_id,
        action=action[:MAX_ACTION_LEN],
        before=state(before),
        after=state(after),
        reason=reason[:MAX_REASON_LEN] if reason is not None else None,
    )


def state(fields: Mapping[str, Any] | None) -> str | None:
    if fields is None:
        return None
    shown = {k: HIDDEN if k in SECRET_FIELDS and v is not None else _plain(k, v) for k, v in fields.items()}
    text = json.dumps(shown, sort_keys=True, ensure_ascii=False)
    if len(text) > MAX_STATE_LEN:
        return json.dumps({"cropped": text[: MAX_STATE_LEN - 100]}, ensure_ascii=False)
    return text


def _plain(name: str, value: Any) -> Any:
    """A value as JSON keeps it: the JSON text of JSON_COLUMNS decoded, so the log shows a
    structure (a name that merely looks like JSON stays text), decimals and times as text."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, str) and name in JSON_COLUMNS:
        try:
            return json.loads(value)
        except ValueError:
            return value
    if isinstance(value, Mapping):
        return {str(k): _plain("", v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain("", v) for v in value]
    return value
