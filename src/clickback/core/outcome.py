"""What a postback sender is told, and what the postback log keeps."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from clickback.core.reasons import Reason


class Result(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    UPDATED = "updated"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Result
    reason: Reason | None = None
    detail: str = ""
    conversion_id: int | None = None
    status: str | None = None
    # The event as recorded, when it is one (a deposit may be recorded as the first_deposit).
    event: str | None = None
    ignored: tuple[str, ...] = ()
    # What looked wrong in an accepted postback (core/diagnosis.conversion_warnings).
    warnings: tuple[str, ...] = ()

    @property
    def http_status(self) -> int:
        return self.reason.http_status if self.reason else 200

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"result": self.result.value}
        if self.conversion_id is not None:
            body["conversion_id"] = self.conversion_id
        if self.event is not None:
            body["event"] = self.event
        if self.status is not None:
            body["status"] = self.status
        if self.reason is not None:
            body |= {"reason": self.reason.code, "message": self.reason.sentence}
            body["hint"] = self.reason.hint
        if self.detail:
            body["detail"] = self.detail
        if self.ignored:
            # Unknown names are the usual sign of a wrong parameter name on the sender's side.
            body["ignored_parameters"] = list(self.ignored)
        if self.warnings:
            body["warnings"] = list(self.warnings)
        return body
