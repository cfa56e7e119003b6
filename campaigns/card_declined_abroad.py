"""Card payments abroad declined again and again → a travel card with no foreign-use block.

Fires on the second (or later) declined card payment abroad within a day.
"""

from offers import Event, History, Offer, Profile, Trigger, campaign

HOME_COUNTRY = "PL"


@campaign(
    id="card-abroad-travel-card",
    version=1,
    priority=80,
    channel="sms",
    valid_from="2026-01-01",
    send_delay="10s",
    cooldown="14d",
    daily_cap=1,
    control_share=0.10,
    template=(
        "{first_name}, trouble paying in {country}? The travel card pays abroad in 30 "
        "currencies with no fee: order it in the app."
    ),
    triggers=[Trigger("transaction", properties={"kind": "card_payment", "status": "declined"})],
    description="Repeated declined card payments abroad to a travel card.",
)
def card_abroad(event: Event, profile: Profile, history: History) -> Offer | None:
    country = event.properties.get("country")
    if country in (None, HOME_COUNTRY) or "travel_card" in profile.products:
        return None
    earlier = [
        e
        for e in history.matching(
            "transaction", within="24h", kind="card_payment", status="declined"
        )
        if e.properties.get("country") not in (None, HOME_COUNTRY)
    ]
    if not earlier:
        return None
    return Offer(country=country)
