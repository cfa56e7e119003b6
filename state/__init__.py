"""State types shared by every layer: the event contract, dead letters and their snapshots."""
