"""An ATM withdrawal declined for insufficient funds → a personal-loan offer by SMS.

The case study's first campaign: the customer needs cash now, so the offer goes out within a
minute, once per month at most, and not to customers who already hold a personal loan.
"""

from offers import Event, History, Offer, Profile, Trigger, campaign


@campaign(
    id="atm-decline-personal-loan",
    version=1,
    priority=90,
    channel="sms",
    valid_from="2026-01-01",
    valid_until="2027-12-31",
    send_delay="45s",
    cooldown="30d",
    daily_cap=1,
    control_share=0.10,
    template=(
        "{first_name}, short of cash? A personal loan of up to {limit} PLN can be on your "
        "account today. Reply YES and we will call you."
    ),
    triggers=[
        Trigger(
            "transaction",
            channel="atm",
            properties={"kind": "atm_withdrawal", "status": "declined"},
        )
    ],
    description="Declined ATM withdrawal (insufficient funds) to personal loan.",
)
def atm_decline(event: Event, profile: Profile, history: History) -> Offer | None:
    if event.properties.get("reason") != "insufficient_funds":
        return None
    if "personal_loan" in profile.products:
        return None
    limit = 20_000 if profile.segment in ("premium", "private") else 10_000
    return Offer(limit=limit)
