"""The detectors of diagnosis, each with a case that finds and one that does not."""

from datetime import UTC, datetime

import pytest

from clickback.core.diagnosis import (
    OfferActivity,
    StalePending,
    did_you_mean,
    misspelt_parameters,
    reason_hints,
    refusal_spike,
    silent_offers,
    stale_pending,
    summary,
)


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("payot", "payout"),
        ("clik_id", "click_id"),
        ("evnt", "event"),
        ("curency", "currency"),
        ("txnid", "txn_id"),
        ("click-id", "click_id"),
        # Never a name that means something else: subid is a click ID, event_time a time.
        ("sub_id", "sub1"),
        ("sub_id3", "sub3"),
        ("subid2", "sub2"),
        ("sub_9", None),
        ("event_name", "event"),
        ("currency_code", "currency"),
        ("payout_amount", "payout"),
        ("event_id", None),
        ("player_name", None),
        ("payout", None),  # known
        ("cid", None),  # an alias
        ("aff_sub", None),  # sent on purpose by networks
        ("utm_campaign", None),
        ("zz", None),
    ],
)
def test_an_ignored_name_close_to_a_known_one_is_named(name: str, meant: str | None) -> None:
    assert did_you_mean(name) == meant


def test_no_suggestion_renames_a_parameter_into_one_the_postback_already_sends() -> None:
    from decimal import Decimal

    from clickback.core.diagnosis import conversion_warnings

    ignored = ("sub_id", "event_name")
    assert conversion_warnings("lead", None, {}, ignored, {"click_id", "event", "token"}) == (
        "misspelt_parameter: 'sub_id' was ignored, did you mean 'sub1'?",
    )
    sent = {"click_id", "event", "token", "sub1"}
    assert conversion_warnings("lead", Decimal(1), {}, ignored, sent) == ()


def test_misspelt_parameters_are_findings_most_frequent_first() -> None:
    found = misspelt_parameters({"payot": 3, "utm_source": 9, "evnt": 5})
    assert [(f.subject, f.count) for f in found] == [("evnt", 5), ("payot", 3)]
    assert "did you mean 'payout'?" in found[1].message


def test_network_click_id_habits_are_explained_only_when_seen() -> None:
    seen = reason_hints({"missing_click_id": 4}, ["transaction_id=abc&event=sale&token=***"])
    assert [(f.code, f.count) for f in seen] == [("click_id_in_network_field", 4)]
    assert reason_hints({"missing_click_id": 4}, ["event=sale"]) == []
    assert reason_hints({"bad_token": 4}, ["transaction_id=abc"]) == []


@pytest.mark.parametrize(
    ("recent", "before", "spike"),
    [
        ((40, 20), (1000, 10), True),  # 50% against 1%
        ((40, 20), (1000, 400), False),  # 50% against 40%: not double
        ((40, 8), (1000, 0), False),  # too few refusals to tell
        ((12, 12), (0, 0), True),  # nothing before: every refusal is new
        ((0, 0), (100, 50), False),
    ],
)
def test_a_refusal_spike_needs_a_higher_rate_and_enough_refusals(
    recent: tuple[int, int], before: tuple[int, int], spike: bool
) -> None:
    assert (refusal_spike(recent, before, "advertiser 1") is not None) is spike


def test_a_silent_offer_had_clicks_no_conversion_and_converted_before() -> None:
    activity = [
        OfferActivity("offer 1", 80, 0, 5),  # silent
        OfferActivity("offer 2", 80, 1, 5),  # converts
        OfferActivity("offer 3", 80, 0, 0),  # never converted: nothing to compare
        OfferActivity("offer 4", 10, 0, 5),  # too few clicks to tell
    ]
    assert [f.subject for f in silent_offers(activity, 24)] == ["offer 1"]


def test_stale_pending_conversions_are_found_per_offer() -> None:
    oldest = datetime(2026, 10, 1, tzinfo=UTC)
    found = stale_pending([StalePending("offer 1", 3, oldest), StalePending("offer 2", 0, oldest)], 7)
    assert [(f.subject, f.count) for f in found] == [("offer 1", 3)]
    assert "since 2026-10-01" in found[0].message


def test_the_summary_counts_results_and_orders_reasons() -> None:
    s = summary(
        [
            ("accepted", None, 6),
            ("rejected", "bad_token", 1),
            ("rejected", "unknown_click", 2),
            ("duplicate", "duplicate", 1),
        ]
    )
    assert (s.total, s.accepted, s.rejected, s.duplicate) == (10, 6, 3, 1)
    assert list(s.by_reason) == ["unknown_click", "bad_token", "duplicate"]
    assert s.acceptance_rate == 0.6
    assert summary([]).acceptance_rate is None


def test_an_accepted_postback_is_warned_of_a_payout_other_than_the_offers() -> None:
    from decimal import Decimal

    from clickback.core.diagnosis import conversion_warnings, payout_differences

    payouts = {"first_deposit": Decimal("50")}
    assert conversion_warnings("first_deposit", Decimal("45"), payouts, ()) == (
        "payout_differs: sent 45, the offer pays 50 for first_deposit",
    )
    assert conversion_warnings("first_deposit", Decimal("50.00"), payouts, ()) == ()
    assert conversion_warnings("first_deposit", None, payouts, ()) == ()  # the offer's amount is used
    assert conversion_warnings("deposit", Decimal("45"), payouts, ()) == ()  # no amount configured
    assert conversion_warnings("sale", None, {}, ("payot", "utm_source")) == (
        "misspelt_parameter: 'payot' was ignored, did you mean 'payout'?",
    )
    assert [f.subject for f in payout_differences([("offer 1", 2), ("offer 2", 0)])] == ["offer 1"]


@pytest.mark.parametrize(
    ("payout", "currency", "warning"),
    [
        (
            "50",
            "USD",
            "payout_differs: sent 50 USD, the offer pays 50 EUR for first_deposit (another currency)",
        ),
        (
            "10",
            "USD",
            "payout_differs: sent 10 USD, the offer pays 50 EUR for first_deposit (another currency)",
        ),
        ("45", "EUR", "payout_differs: sent 45, the offer pays 50 for first_deposit"),
        ("45", None, "payout_differs: sent 45, the offer pays 50 for first_deposit"),
        ("50", "EUR", None),
        ("50", None, None),
    ],
)
def test_a_payout_in_another_currency_than_the_offers_is_told_as_such(
    payout: str, currency: str | None, warning: str | None
) -> None:
    from decimal import Decimal

    from clickback.core.diagnosis import conversion_warnings

    found = conversion_warnings(
        "first_deposit",
        Decimal(payout),
        {"first_deposit": Decimal(50)},
        (),
        currency=currency,
        offer_currency="EUR",
    )
    assert found == ((warning,) if warning else ())


def test_failed_link_checks_are_findings_with_the_checks_hint() -> None:
    from clickback.core.diagnosis import failed_links

    found = failed_links(
        [
            ("offer 1", "soft_404", "soft_404", "Ask for the new URL."),
            ("offer 2", "broken", "timeout", "Retry."),
        ]
    )
    assert [(f.subject, f.hint) for f in found] == [
        ("offer 1", "Ask for the new URL."),
        ("offer 2", "Retry."),
    ]
    assert "soft 404" in found[0].message and "broken (timeout)" in found[1].message
    assert failed_links([]) == []
