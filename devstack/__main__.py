"""``python -m devstack up|down|status``: the local stack's command line."""

from __future__ import annotations

from devstack.cli import app

if __name__ == "__main__":
    app(prog_name="devstack")
