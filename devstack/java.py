"""Finding a Java runtime and fetching jars with Maven, for the JVM services (Kafka)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from devstack import procs
from devstack.errors import StackError

JAVA_HINT = (
    "install openjdk-17-jre-headless (apt-get install openjdk-17-jre-headless), "
    "or put a JDK 17+ first on PATH or in JAVA_HOME"
)
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')
_MAVEN_TIMEOUT_S = 900.0
_STAMP = ".fetched"


def find_java(minimum: int, purpose: str) -> Path:
    """The ``java`` to use: ``$JAVA_HOME/bin/java`` when set, else the first on PATH.

    Args:
        minimum: The lowest Java feature release accepted, e.g. 17.
        purpose: What needs it, for the message (e.g. ``Kafka``).

    Returns:
        The path of the java executable.

    Raises:
        StackError: When there is no java or it is too old.
    """
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    found = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    if found is None:
        raise StackError(
            f"Java {minimum}+ is required for {purpose}, but no `java` is on PATH: {JAVA_HINT}."
        )
    version = java_version(Path(found))
    if version is None or version < minimum:
        shown = f"Java {version}" if version is not None else "a Java of unknown version"
        raise StackError(
            f"Java {minimum}+ is required for {purpose}, but {found} is {shown}: {JAVA_HINT}."
        )
    return Path(found)


def java_version(java: Path) -> int | None:
    """The feature release of ``java`` (8, 17, 21, ...), or None if it cannot be told.

    Args:
        java: A java executable.

    Returns:
        The major version.
    """
    try:
        result = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = _VERSION.search(result.stderr + result.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def jars_cached(pom: Path, libs: Path) -> bool:
    """Whether ``libs`` holds the jars of exactly this ``pom`` (fetched earlier).

    Args:
        pom: The pom that lists the jars.
        libs: The folder they were copied to.

    Returns:
        True when no Maven run is needed.
    """
    stamp = libs / _STAMP
    return stamp.is_file() and stamp.read_text().strip() == _digest(pom)


def require_maven(purpose: str) -> Path:
    """The ``mvn`` executable on PATH.

    Args:
        purpose: What needs it, for the message.

    Returns:
        Its path.

    Raises:
        StackError: When Maven is not installed.
    """
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            f"Maven (`mvn`) is needed on the first start to fetch {purpose} into .stack/ "
            "(later starts use that copy): install it with apt-get install maven."
        )
    return Path(mvn)


def fetch_jars(pom: Path, libs: Path, repository: Path, log: Path) -> None:
    """Copy the runtime dependencies of ``pom`` into ``libs`` with Maven.

    The jars land in a scratch folder first and replace ``libs`` only when Maven succeeded,
    with a stamp of the pom so that the next start skips Maven.

    Args:
        pom: The pom listing the jars.
        libs: The folder the jars end in.
        repository: Maven's local repository (its download cache).
        log: Where Maven's output goes.

    Raises:
        StackError: When Maven is missing or fails; the message holds the end of its output.
    """
    mvn = require_maven("the jars")
    scratch = libs.with_name(libs.name + ".partial")
    shutil.rmtree(scratch, ignore_errors=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(mvn),
        "-B",
        "-q",
        "-Dstyle.color=never",
        "-f",
        str(pom),
        f"-Dmaven.repo.local={repository}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={scratch}",
    ]
    returncode, offset = procs.run_logged(command, log, timeout=_MAVEN_TIMEOUT_S)
    if returncode == -1:
        raise StackError(
            f"Maven did not finish within {_MAVEN_TIMEOUT_S:.0f} s fetching {pom}.\n"
            f"Last lines of {log}:\n{procs.tail(log, 30, offset)}"
        )
    if returncode != 0 or not any(scratch.glob("*.jar")):
        raise StackError(
            f"Maven failed (exit code {returncode}) fetching the jars of {pom}.\n"
            f"Last lines of {log}:\n{procs.tail(log, 30, offset) or '(empty)'}"
        )
    (scratch / _STAMP).write_text(_digest(pom) + "\n")
    shutil.rmtree(libs, ignore_errors=True)
    scratch.replace(libs)


def _digest(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
