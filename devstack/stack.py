"""Start, stop and check the services of the local stack as a whole."""

from __future__ import annotations

import contextlib
import fcntl
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from devstack.base import Reporter, Service, ServiceStatus, State
from devstack.errors import StackError
from devstack.paths import StackPaths
from devstack.services import SERVICES
from state.settings import Settings, load_settings


def service_names() -> list[str]:
    """The names of every service, in start order."""
    return [cls.name for cls in SERVICES]


def select(
    names: Iterable[str] | None = None,
    settings: Settings | None = None,
    paths: StackPaths | None = None,
    report: Reporter | None = None,
) -> list[Service]:
    """The services called ``names`` (all when None), in start order.

    Args:
        names: Service names such as ``kafka``; None or empty for all.
        settings: The settings (read from the environment when None).
        paths: The stack's folders (this checkout's when None).
        report: Receives progress lines.

    Returns:
        The services.

    Raises:
        StackError: When a name is unknown.
    """
    wanted = {n.strip().lower() for n in names or () if n.strip()}
    unknown = wanted - set(service_names())
    if unknown:
        known = ", ".join(service_names())
        raise StackError(f"unknown service {', '.join(sorted(unknown))}: choose from {known}")
    settings = settings or load_settings()
    paths = paths or StackPaths.default()
    chosen = [cls for cls in SERVICES if not wanted or cls.name in wanted]
    if report is None:
        return [cls(settings, paths) for cls in chosen]
    return [cls(settings, paths, report) for cls in chosen]


def status(
    names: Iterable[str] | None = None,
    settings: Settings | None = None,
    paths: StackPaths | None = None,
) -> list[ServiceStatus]:
    """Check each service with a real request, starting nothing.

    Args:
        names: Service names; None for all.
        settings: The settings (read from the environment when None).
        paths: The stack's folders.

    Returns:
        One status per service.

    Raises:
        StackError: When a name is unknown.
    """
    return [service.status() for service in select(names, settings, paths)]


@contextlib.contextmanager
def _locked(
    names: Iterable[str] | None,
    settings: Settings | None,
    paths: StackPaths | None,
    report: Reporter | None,
) -> Iterator[tuple[list[Service], Reporter]]:
    """The services :func:`select` picks and where progress goes, under the stack's lock."""
    say = report or (lambda _line: None)
    services = select(names, settings, paths, say)
    with _exclusive(services[0].paths, say):
        yield services, say


@contextlib.contextmanager
def _exclusive(paths: StackPaths, say: Reporter) -> Iterator[None]:
    """Hold the stack's lock, so that two ``up``/``down`` never start or stop at once."""
    lock_path = paths.stack / "run" / "stack.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("waiting for another devstack command to finish ...")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass
class _Pending:
    """A service that ``up`` waits for."""

    service: Service
    process: subprocess.Popen[bytes] | None
    log_offset: int


def up(
    names: Iterable[str] | None = None,
    settings: Settings | None = None,
    paths: StackPaths | None = None,
    report: Reporter | None = None,
) -> list[ServiceStatus]:
    """Start the services that are not running and wait until every one answers.

    A service already answering at its address (started by the stack or not) is left as it
    is. Prerequisites of everything to start are checked before anything starts.

    Args:
        names: Service names; None for all.
        settings: The settings (read from the environment when None).
        paths: The stack's folders.
        report: Receives progress lines.

    Returns:
        One status per service, every one ready.

    Raises:
        StackError: When a prerequisite is missing, a port is taken, or a service does not
            become ready; the message says which and why.
    """
    with _locked(names, settings, paths, report) as (services, say):
        return _up(services, say)


def _up(services: list[Service], say: Reporter) -> list[ServiceStatus]:
    """:func:`up` while holding the lock."""
    to_start: list[Service] = []
    pending: list[_Pending] = []
    problems: list[str] = []
    for service in services:
        found = service.status()
        if found.state is State.EXTERNAL:
            say(f"{service.name}: external, ready at {found.endpoint} (not started by the stack)")
        elif found.ready:
            say(f"{service.name}: already running (pid {found.pid}) and ready")
        elif found.state is State.STARTING:
            say(f"{service.name}: running (pid {found.pid}) but not answering yet, waiting ...")
            pending.append(_Pending(service, None, 0))
        elif found.state is State.PORT_BUSY:
            problems.append(f"{service.title}: {found.detail}")
        elif not service.local:
            problems.append(f"{service.title} at {found.endpoint}: {found.detail}")
        else:
            to_start.append(service)
    if problems:
        raise StackError("\n".join(problems))

    for service in to_start:
        service.check_prerequisites()
    for service in to_start:
        service.prepare()
    for service in to_start:
        process, offset = service.start()
        say(f"{service.name}: started (pid {process.pid}), waiting for it to answer ...")
        pending.append(_Pending(service, process, offset))

    failures: list[str] = []
    for item in pending:
        try:
            began = time.monotonic()
            item.service.wait_ready(item.process, item.log_offset)
            item.service.after_ready(started=item.process is not None)
            took = time.monotonic() - began
            say(f"{item.service.name}: ready at {item.service.endpoint} ({took:.1f} s)")
        except StackError as exc:
            failures.append(f"{item.service.title}: {exc}")
    for service in services:
        if all(item.service is not service for item in pending):
            try:
                service.after_ready(started=False)
            except StackError as exc:
                failures.append(f"{service.title}: {exc}")
    if failures:
        raise StackError("\n\n".join(failures))
    return [service.status() for service in services]


def down(
    names: Iterable[str] | None = None,
    settings: Settings | None = None,
    paths: StackPaths | None = None,
    wipe: bool = False,
    report: Reporter | None = None,
) -> list[ServiceStatus]:
    """Stop what the stack started; services it did not start are left alone.

    Args:
        names: Service names; None for all.
        settings: The settings (read from the environment when None).
        paths: The stack's folders.
        wipe: Also delete the data (all of ``.stack/data``, or the named services' folders).
        report: Receives progress lines.

    Returns:
        One status per service after stopping.

    Raises:
        StackError: When a name is unknown.
    """
    chosen = list(names or ())
    with _locked(chosen, settings, paths, report) as (services, say):
        _down(services, wipe_all=not chosen, wipe=wipe, say=say)
    return [service.status() for service in services]


def _down(services: list[Service], wipe_all: bool, wipe: bool, say: Reporter) -> None:
    """:func:`down` while holding the lock."""
    for service in reversed(services):
        pid = service.pid()
        if service.stop():
            say(f"{service.name}: stopped (pid {pid})")
        else:
            say(f"{service.name}: not running under the stack, nothing to stop")
    if wipe:
        folders = [services[0].paths.data_root] if wipe_all else [s.data_dir for s in services]
        for folder in folders:
            if folder.exists():
                shutil.rmtree(folder)
                say(f"deleted {folder}")
