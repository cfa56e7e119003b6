"""A large cash deposit at a branch → a savings account paying interest on it."""

from offers import Event, History, Offer, Profile, Trigger, campaign

LARGE_DEPOSIT_PLN = 3000


@campaign(
    id="branch-deposit-savings",
    version=1,
    priority=50,
    channel="sms",
    valid_from="2026-01-01",
    send_delay="5m",
    cooldown="90d",
    daily_cap=1,
    control_share=0.10,
    template=(
        "{first_name}, thank you for your visit. {amount} PLN in a savings account would earn "
        "interest from tomorrow: open one in the app."
    ),
    triggers=[Trigger("transaction", channel="branch", properties={"kind": "cash_deposit"})],
    description="Large branch cash deposit to a savings account.",
)
def branch_deposit(event: Event, profile: Profile, history: History) -> Offer | None:
    amount = float(event.properties.get("amount", 0))
    if amount < LARGE_DEPOSIT_PLN or "savings" in profile.products:
        return None
    return Offer(amount=round(amount))
