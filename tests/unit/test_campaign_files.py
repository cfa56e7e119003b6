"""Campaign files: live reload in the running job, and ``clickstream campaigns check``."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flows.cli import app
from offers.loader import CampaignRegistry

SHIPPED = Path(__file__).resolve().parents[2] / "campaigns"
SHIPPED_IDS = (
    "abandoned-loan-callback",
    "atm-decline-personal-loan",
    "branch-deposit-savings",
    "card-abroad-travel-card",
    "mobile-onboarding",
    "rejected-transfer-overdraft",
)


def campaign_source(campaign_id: str, version: int = 1, **options: str) -> str:
    extra = "".join(f"    {name}={value},\n" for name, value in options.items())
    return (
        "from offers import Offer, Trigger, campaign\n"
        "\n"
        "@campaign(\n"
        f"    id={campaign_id!r},\n"
        f"    version={version},\n"
        '    template="{first_name}, a loan of {limit}",\n'
        '    triggers=[Trigger("transaction", channel="atm")],\n'
        f"{extra}"
        ")\n"
        "def rule(event, profile, history):\n"
        "    return Offer(limit=5000)\n"
    )


BROKEN = {
    "syntax error": ("def rule(:\n", "SyntaxError"),
    "exception at import": (
        "from offers import campaign\nLIMITS = {'gold': 1}\nDEFAULT = LIMITS['silver']\n",
        "(line 3): KeyError: 'silver'",
    ),
    "bad decorator args": (
        campaign_source("loan", 3, daily_cap="0", valid_until="'2026-02-30'"),
        "valid_until must be a date like '2026-12-31', not '2026-02-30'; "
        "daily_cap must be a whole number from 1, not 0",
    ),
}


class Clock:
    """The registry's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Folder:
    """A campaigns folder whose every write gets a new modification time.

    The registry notices a change by modification time and size; two saves within the
    filesystem's timestamp resolution would look the same, which a person editing never does.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp = 1_700_000_000

    def write(self, name: str, text: str) -> Path:
        target = self.path / name
        target.write_text(text)
        self._stamp += 10
        os.utime(target, (self._stamp, self._stamp))
        return target


@pytest.fixture
def folder(tmp_path: Path) -> Folder:
    (tmp_path / "campaigns").mkdir()
    return Folder(tmp_path / "campaigns")


def running(registry: CampaignRegistry) -> dict[str, int]:
    return {c.id: c.version for c in registry.current().campaigns}


# --- live reload ------------------------------------------------------------------------------


def test_a_changed_file_is_picked_up_at_the_next_check(folder: Folder) -> None:
    folder.write("loan.py", campaign_source("loan", 1))
    clock = Clock()
    registry = CampaignRegistry(folder.path, reload_s=5, clock=clock)
    assert running(registry) == {"loan": 1}

    folder.write("loan.py", campaign_source("loan", 2))
    clock.now += 4
    assert running(registry) == {"loan": 1}, "checked at most every reload_s"
    clock.now += 1
    assert running(registry) == {"loan": 2}


def test_a_new_file_starts_and_a_removed_file_stops(folder: Folder) -> None:
    loan = folder.write("loan.py", campaign_source("loan"))
    registry = CampaignRegistry(folder.path, reload_s=0, clock=Clock())
    assert running(registry) == {"loan": 1}

    folder.write("card.py", campaign_source("card"))
    assert running(registry) == {"loan": 1, "card": 1}

    loan.unlink()
    assert running(registry) == {"card": 1}
    assert registry.current().by_id.keys() == {"card"}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_broken_file_is_rejected_and_its_previous_version_keeps_running(
    folder: Folder, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    text, expected = BROKEN[case]
    loan = folder.write("loan.py", campaign_source("loan", 1))
    folder.write("card.py", campaign_source("card", 1))
    registry = CampaignRegistry(folder.path, reload_s=0, clock=Clock())
    assert running(registry) == {"loan": 1, "card": 1}

    folder.write("loan.py", text)
    with caplog.at_level(logging.ERROR, logger="offers.loader"):
        assert running(registry) == {"loan": 1, "card": 1}
    assert expected in registry.problems[loan]
    assert registry.problems[loan].startswith(str(loan))
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(logged) == 1
    assert str(loan) in logged[0] and expected in logged[0]
    assert "keeping its 1 previous campaigns" in logged[0]

    # Checked again without a change: still rejected, not logged again.
    caplog.clear()
    assert running(registry) == {"loan": 1, "card": 1}
    assert not caplog.records

    folder.write("loan.py", campaign_source("loan", 2))
    assert running(registry) == {"loan": 2, "card": 1}
    assert registry.problems == {}


def test_a_file_reusing_another_files_id_is_rejected_and_keeps_its_own_campaigns(
    folder: Folder,
) -> None:
    loan = folder.write("loan.py", campaign_source("loan"))
    card = folder.write("card.py", campaign_source("card"))
    registry = CampaignRegistry(folder.path, reload_s=0, clock=Clock())

    folder.write("card.py", campaign_source("loan", 7))
    assert running(registry) == {"loan": 1, "card": 1}
    assert registry.current().by_id["loan"].source == str(loan)
    assert registry.problems[card] == f"{card}: campaign id 'loan' is already in {loan}"


def test_a_broken_file_at_start_is_reported_and_the_others_run(folder: Folder) -> None:
    broken = folder.write("broken.py", BROKEN["syntax error"][0])
    folder.write("loan.py", campaign_source("loan"))
    registry = CampaignRegistry(folder.path, reload_s=0, clock=Clock())
    assert running(registry) == {"loan": 1}
    assert list(registry.problems) == [broken]


def test_a_same_size_edit_within_one_second_is_picked_up(
    folder: Folder, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As deployed: Python writes __pycache__ next to the campaign files.
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    loan = folder.write("loan.py", campaign_source("loan", 1))
    registry = CampaignRegistry(folder.path, reload_s=0, clock=Clock())
    assert running(registry) == {"loan": 1}

    stamp = loan.stat().st_mtime_ns
    loan.write_text(campaign_source("loan", 2))
    os.utime(loan, ns=(stamp + 1000, stamp + 1000))
    assert running(registry) == {"loan": 2}


# --- clickstream campaigns check --------------------------------------------------------------


def check(directory: Path, *options: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["campaigns", "check", str(directory), *options])
    return result.exit_code, result.output


def test_the_shipped_campaigns_pass_the_check() -> None:
    code, output = check(SHIPPED, "--timezone", "Europe/Warsaw")
    assert code == 0, output
    for campaign_id in SHIPPED_IDS:
        assert campaign_id in output
    assert "OK: 6 campaigns, 0 errors, 0 warnings" in output


def test_the_check_shows_each_campaigns_settings(folder: Folder) -> None:
    options = {"priority": "80", "send_delay": "'45s'", "cooldown": "'30d'", "daily_cap": "2"}
    folder.write("loan.py", campaign_source("loan", 3, control_share="0.1", **options))
    result = CliRunner().invoke(
        app, ["campaigns", "check", str(folder.path)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "loan" in line and "│" in line)
    cells = [cell.strip() for cell in row.strip("│").split("│")]
    assert cells[:4] == ["loan", "3", "80", "sms"]
    assert cells[5:] == ["45s", "30d", "2", "10%", "transaction channel=atm", "loan.py"]


def test_every_broken_file_is_named_with_its_problem_and_the_check_fails(
    folder: Folder,
) -> None:
    folder.write("loan.py", campaign_source("loan"))
    folder.write("copy_of_loan.py", campaign_source("loan", 2))
    for case, (text, _) in BROKEN.items():
        folder.write(case.replace(" ", "_") + ".py", text)
    code, output = check(folder.path)
    assert code == 1
    problems = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(problems) == 4, output
    for case, (_, expected) in BROKEN.items():
        path = folder.path / (case.replace(" ", "_") + ".py")
        assert any(line.startswith(f"error: {path}") and expected in line for line in problems)
    clash = f"error: {folder.path / 'loan.py'}: campaign id 'loan' is already declared in "
    assert f"{clash}{folder.path / 'copy_of_loan.py'}" in problems
    assert "FAILED: 1 campaign, 4 errors, 0 warnings" in output


def test_a_rule_that_cannot_take_event_profile_history_is_an_error(folder: Folder) -> None:
    text = campaign_source("loan").replace("(event, profile, history)", "(event, profile)")
    path = folder.write("loan.py", text)
    code, output = check(folder.path)
    assert code == 1
    assert (
        f"error: {path}: campaign 'loan': the rule must take (event, profile, history), "
        "not rule(event, profile)" in output
    )


def test_an_ended_campaign_or_an_empty_file_is_a_warning_that_fails_only_with_strict(
    folder: Folder,
) -> None:
    ended = folder.write("ended.py", campaign_source("ended", valid_until="'2020-01-31'"))
    empty = folder.write("notes.py", "LOAN_FORM = 'loan_application_form'\n")
    code, output = check(folder.path, "--timezone", "Europe/Warsaw")
    assert code == 0, output
    assert (
        f"warning: {ended}: campaign 'ended': valid_until 2020-01-31 has passed; it never runs"
        in output
    )
    assert f"warning: {empty}: declares no campaign" in output
    assert "OK: 1 campaign, 0 errors, 2 warnings" in output

    code, output = check(folder.path, "--strict")
    assert code == 1
    assert "FAILED: 1 campaign, 0 errors, 2 warnings" in output


def test_a_missing_folder_fails_the_check(tmp_path: Path) -> None:
    code, output = check(tmp_path / "nowhere")
    assert code == 1
    assert f"error: {tmp_path / 'nowhere'}: campaigns folder not found" in output
