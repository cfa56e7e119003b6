"""A campaigns ConfigMap updated while the job runs: the kubelet rewrites the mounted folder the
way it does (a new timestamped folder, ``..data`` swapped to it in one rename, one symlink per
key), and the job's campaign registry picks the change up, as the chart promises.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from offers.loader import CampaignRegistry

CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"


class ConfigMapVolume:
    """A ConfigMap volume as the kubelet's atomic writer keeps it up to date."""

    def __init__(self, folder: Path) -> None:
        """The volume's folder, empty until the first ``publish``."""
        self.folder = folder
        self._generation = 0

    def publish(self, files: dict[str, str]) -> None:
        """Make ``files`` the ConfigMap's data, as one atomic update."""
        self._generation += 1
        data = self.folder / f"..2026_01_15_10_00_{self._generation:02d}.000000001"
        data.mkdir()
        for name, text in files.items():
            (data / name).write_text(text)
        link = self.folder / "..data_tmp"
        link.symlink_to(data.name)
        old = (self.folder / "..data").resolve() if (self.folder / "..data").exists() else None
        link.rename(self.folder / "..data")
        for name in files:
            if not (self.folder / name).is_symlink():
                (self.folder / name).symlink_to(f"..data/{name}")
        for entry in self.folder.iterdir():
            if entry.is_symlink() and not entry.name.startswith("..") and entry.name not in files:
                entry.unlink()
        if old is not None:
            shutil.rmtree(old)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        """Starts at zero."""
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_configmap_update_reaches_the_running_job(tmp_path: Path) -> None:
    volume = ConfigMapVolume(tmp_path)
    onboarding = (CAMPAIGNS / "mobile_onboarding.py").read_text()
    abroad = (CAMPAIGNS / "card_declined_abroad.py").read_text()
    volume.publish({"mobile_onboarding.py": onboarding})
    clock = Clock()
    registry = CampaignRegistry(tmp_path, reload_s=5, clock=clock)
    assert registry.current().fingerprint == "mobile-onboarding@1"

    # Marketing raises the campaign's version and adds another one: one ConfigMap update.
    volume.publish(
        {
            "mobile_onboarding.py": onboarding.replace("version=1,", "version=2,"),
            "card_declined_abroad.py": abroad,
        }
    )
    clock.now += 5
    running = registry.current().fingerprint
    assert "mobile-onboarding@2" in running
    assert "card-abroad-travel-card@1" in running

    # A key removed from the ConfigMap: its campaigns stop.
    volume.publish({"card_declined_abroad.py": abroad})
    clock.now += 5
    assert registry.current().fingerprint.startswith("card-abroad-travel-card@1")
    assert "mobile-onboarding" not in registry.current().fingerprint
