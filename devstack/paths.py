"""Where the local stack keeps its downloads, data, logs and pid files (all under ``.stack/``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class StackPaths:
    """The folder layout of the local stack below the repository root.

    Attributes:
        root: The repository root (the folder holding ``pyproject.toml``).
    """

    root: Path

    @classmethod
    def default(cls) -> StackPaths:
        """The layout for this checkout: the repository that contains this package."""
        return cls(Path(__file__).resolve().parents[1])

    @property
    def stack(self) -> Path:
        """The git-ignored ``.stack/`` folder that holds everything the stack writes."""
        return self.root / ".stack"

    @property
    def scripts(self) -> Path:
        """The repository's ``scripts/`` folder (the Kafka pom and logging config)."""
        return self.root / "scripts"

    def home(self, service: str) -> Path:
        """Downloads and generated configuration of ``service`` (e.g. ``.stack/kafka``)."""
        return self.stack / service

    @property
    def data_root(self) -> Path:
        """The parent of every service's data folder."""
        return self.stack / "data"

    def data(self, service: str) -> Path:
        """The data folder of ``service``, kept across ``down``/``up``."""
        return self.data_root / service

    def log(self, service: str) -> Path:
        """The log file that receives the output of ``service``."""
        return self.stack / "logs" / f"{service}.log"

    def pid(self, service: str) -> Path:
        """The pid file of ``service`` while the stack runs it."""
        return self.stack / "run" / f"{service}.pid"
