"""A standing order rejected for insufficient funds → an overdraft so bills get paid."""

from offers import Event, History, Offer, Profile, Trigger, campaign


@campaign(
    id="rejected-transfer-overdraft",
    version=1,
    priority=85,
    channel="sms",
    valid_from="2026-01-01",
    send_delay="1m",
    cooldown="30d",
    daily_cap=1,
    control_share=0.10,
    template=(
        "{first_name}, a payment of {amount} PLN could not go out today. An overdraft keeps "
        "your bills paid: switch it on in the app in one minute."
    ),
    triggers=[
        Trigger(
            "transaction",
            channel="core",
            properties={"kind": "transfer", "status": "rejected"},
        )
    ],
    description="Rejected standing order to an overdraft.",
)
def rejected_transfer(event: Event, profile: Profile, history: History) -> Offer | None:
    if event.properties.get("reason") != "insufficient_funds":
        return None
    if "overdraft" in profile.products:
        return None
    return Offer(amount=round(float(event.properties.get("amount", 0))))
