"""A loan application started in the app and not submitted → an adviser calls back.

The rule fires on ``form_start``; the offer waits 20 minutes and is cancelled if the customer
submits the form (or converts) in the meantime: what is left are the abandoned applications.
"""

from offers import Event, History, Profile, Trigger, campaign

LOAN_FORM = "loan_application_form"


@campaign(
    id="abandoned-loan-callback",
    version=1,
    priority=70,
    channel="sms",
    valid_from="2026-01-01",
    send_delay="20m",
    cooldown="7d",
    daily_cap=1,
    control_share=0.10,
    template=(
        "{first_name}, your loan application is saved. An adviser can finish it with you by "
        "phone: reply CALL and we will ring you today."
    ),
    triggers=[Trigger("form_start", form=LOAN_FORM)],
    cancel_if=[Trigger("form_submit", form=LOAN_FORM), Trigger("conversion")],
    description="Abandoned loan application form to a call-back.",
)
def abandoned_loan(event: Event, profile: Profile, history: History) -> bool:
    return "personal_loan" not in profile.products
