"""Real-time offers: the campaign API marketing writes against, and the decision engine.

A campaign file imports only this::

    from offers import Event, History, Offer, Profile, Trigger, campaign

See docs/campaigns.md.
"""

from offers.api import Campaign, CampaignError, Offer, Trigger, campaign
from offers.history import History
from state.contract import Event
from state.customer_store import CustomerProfile as Profile

__all__ = [
    "Campaign",
    "CampaignError",
    "Event",
    "History",
    "Offer",
    "Profile",
    "Trigger",
    "campaign",
]
