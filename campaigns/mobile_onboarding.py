"""The first login to the mobile app we see → an onboarding tip (once a year per customer)."""

from offers import Event, History, Profile, Trigger, campaign


@campaign(
    id="mobile-onboarding",
    version=1,
    priority=10,
    channel="push",
    valid_from="2026-01-01",
    send_delay="2m",
    cooldown="365d",
    daily_cap=1,
    template=(
        "Welcome to mobile banking, {first_name}! Turn on BLIK and card alerts in Settings "
        "to get the most out of the app."
    ),
    triggers=[Trigger("login", channel="mobile")],
    cancel_if=[],
    description="First mobile login to an onboarding tip (push).",
)
def mobile_onboarding(event: Event, profile: Profile, history: History) -> bool:
    return history.count("login", channel="mobile") == 0
