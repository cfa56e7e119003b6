"""The container image: the Dockerfile read as a reviewer would, and its wheels installed into a
clean venv the way the image installs them (no container engine runs here).
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import yaml

from flows.cli import app
from state.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
# Never in the build context: the venv, the local stack, caches, git, Rust's build, the tests.
LOCAL_ONLY = (
    ".venv/bin/python",
    ".stack/run/x",
    ".cache/go/x",
    ".git/HEAD",
    "native/target/release/x",
    "flows/__pycache__/cli.pyc",
    "tests/conftest.py",
)
BUILD_TOOLS = ("gcc", "build-essential", "cargo", "rustc", "rustup", "maturin", "curl", "make")


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, continuation lines joined."""

    keyword: str
    arguments: str


@dataclass(frozen=True)
class Stage:
    """A build stage: its FROM line's image and name, and its instructions."""

    image: str
    name: str | None
    instructions: tuple[Instruction, ...]

    def all(self, keyword: str) -> list[str]:
        """The arguments of every instruction of this kind."""
        return [i.arguments for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """The global ARG defaults and the stages of a Dockerfile."""
    logical: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        logical.append(pending.strip())
        pending = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    current: list[Instruction] | None = None
    for entry in logical:
        keyword, _, rest = entry.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            current = []
            stages.append(Stage(image, name, ()))
        elif current is None:
            if keyword == "ARG":
                key, _, default = rest.partition("=")
                args[key] = default
        else:
            current.append(Instruction(keyword, rest.strip()))
            stages[-1] = Stage(stages[-1].image, stages[-1].name, tuple(current))
    return args, stages


def dockerfile() -> list[Stage]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text())[1]


def final_stage() -> Stage:
    return dockerfile()[-1]


def test_the_final_image_is_slim_python_3_11_built_from_a_separate_builder() -> None:
    stages = dockerfile()
    assert len(stages) == 2
    builder, final = stages
    assert builder.image == final.image == "python:3.11-slim"
    assert builder.name == "builder"
    # The builder makes the project's and the native core's wheels; the final stage takes only
    # the wheels from it.
    wheel_builds = [run for run in builder.all("RUN") if "pip wheel" in run]
    assert any(" . ./native" in run for run in wheel_builds)
    assert not final.all("COPY") or all("--from" not in c for c in final.all("COPY"))
    installs = [run for run in final.all("RUN") if "pip install" in run]
    assert installs == [next(r for r in installs if "from=builder" in r)]
    assert "--no-index" in installs[0]
    assert "--find-links=/wheels" in installs[0]


def test_the_final_image_has_no_build_tools() -> None:
    for run in final_stage().all("RUN"):
        assert "apt-get" not in run
        words = set(re.findall(r"[\w.-]+", run))
        assert not words & set(BUILD_TOOLS), run


def test_the_image_runs_as_the_non_root_user_the_chart_expects() -> None:
    (user,) = final_stage().all("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit(), "numeric, so that runAsNonRoot can verify it"
    assert int(uid) != 0 and int(gid) != 0
    values = yaml.safe_load((ROOT / "helm/bank-clickstream/values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid)
    assert any(f"--uid {uid}" in run for run in final_stage().all("RUN"))


def test_the_entrypoint_is_the_console_script_and_the_default_command_runs_the_job() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    (entrypoint,) = final_stage().all("ENTRYPOINT")
    (command,) = final_stage().all("CMD")
    assert yaml.safe_load(entrypoint) == ["clickstream"]
    assert "clickstream" in scripts
    (subcommand,) = yaml.safe_load(command)
    assert subcommand in {
        c.name or c.callback.__name__ for c in app.registered_commands if c.callback
    }


def test_the_campaigns_are_baked_in_but_offers_stay_off() -> None:
    copies = [c.split() for c in final_stage().all("COPY")]
    assert ["campaigns/", "/app/campaigns/"] in copies
    assert not any("CLICKSTREAM_CAMPAIGNS_DIR" in env for env in final_stage().all("ENV"))


def test_the_exposed_ports_are_the_jobs_defaults() -> None:
    (exposed,) = final_stage().all("EXPOSE")
    defaults = Settings.model_fields
    assert set(exposed.split()) == {
        str(defaults["health_port"].default),
        str(defaults["api_port"].default),
    }


def docker_ignored(patterns: list[str], path: str) -> bool:
    """Whether the build context leaves ``path`` out (Docker's rules: the last matching pattern
    wins, ``!`` lets a path back in, a pattern also matches everything under a folder)."""
    ignored = False
    parts = path.split("/")
    for pattern in patterns:
        allow = pattern.startswith("!")
        glob = pattern.removeprefix("!").rstrip("/")
        candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
        if glob.startswith("**/"):
            candidates += ["/".join(parts[n:]) for n in range(len(parts))]
            glob = glob[3:]
        if any(fnmatch.fnmatchcase(c, glob) for c in candidates):
            ignored = not allow
    return ignored


def test_the_build_context_holds_what_the_build_copies_and_nothing_local() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    needed = [p.rstrip("*") + "/__init__.py" for p in packages["packages"]["find"]["include"]]
    needed += ["pyproject.toml", "README.md", "native/Cargo.toml", "native/src/lib.rs"]
    needed += ["flows/sql/ddl.sql", "campaigns/mobile_onboarding.py"]
    for stage in dockerfile():
        for copy in stage.all("COPY"):
            source = copy.split()[-2]
            if not source.startswith("--"):
                needed.append(source.rstrip("/") + "/x" if source.endswith("/") else source)
    for path in needed:
        assert not docker_ignored(patterns, path), path
    for path in LOCAL_ONLY:
        assert docker_ignored(patterns, path), path


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a command, its output in the failure message."""
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{shlex.join(map(str, command))}\n{done.stdout}\n{done.stderr}"
    return done  # type: ignore[no-any-return]


def builder_sources(src: Path) -> Path:
    """The builder stage's source folder as its COPY lines make it, native/ aside (built in
    place, for its cargo cache): a package the Dockerfile forgets is missing from the wheel."""
    for copy in dockerfile()[0].all("COPY"):
        *sources, destination = copy.split()
        for source in sources:
            if source.startswith("native"):
                continue
            if (ROOT / source).is_dir():
                ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
                shutil.copytree(ROOT / source, src / destination, ignore=ignore)
            else:
                (src / destination).mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / source, src / destination)
    return src


def test_the_wheels_install_into_a_clean_venv_and_the_cli_runs(tmp_path: Path) -> None:
    """What the image does, outside a container: build both wheels, install only them (and their
    dependencies) into a fresh venv, then run what the chart runs."""
    wheels, venv = tmp_path / "wheels", tmp_path / "venv"
    # The native build reuses native/target (warm: seconds instead of a cold Rust build).
    env = {**os.environ, "CARGO_TARGET_DIR": str(ROOT / "native" / "target")}
    wheel = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--wheel-dir", str(wheels)]
    run([*wheel, "."], cwd=builder_sources(tmp_path / "src"), env=env)
    run([*wheel, "./native"], cwd=ROOT, env=env)
    built = sorted(p.name.split("-")[0] for p in wheels.glob("*.whl"))
    assert built == ["bank_clickstream", "bank_clickstream_native"]
    run([sys.executable, "-m", "venv", str(venv)])
    run([str(venv / "bin" / "pip"), "install", "-q", *map(str, wheels.glob("*.whl"))], env=env)
    clean = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path)}

    helped = run([str(venv / "bin" / "clickstream"), "--help"], env=clean, cwd=tmp_path)
    assert "run" in helped.stdout
    # The options the chart's StatefulSet passes.
    run_help = run([str(venv / "bin" / "clickstream"), "run", "--help"], env=clean, cwd=tmp_path)
    for option in ("--workers", "--process-id", "--addresses", "--source"):
        assert option in run_help.stdout

    # The archive's SQL travels in the wheel: DDL and every shipped report from the clean venv.
    ddl = run([str(venv / "bin" / "clickstream"), "trino", "ddl"], env=clean, cwd=tmp_path)
    assert "CREATE TABLE" in ddl.stdout.upper()
    cli = [str(venv / "bin" / "clickstream"), "trino", "report", "no_such_report"]
    listed = subprocess.run(
        cli, capture_output=True, text=True, check=False, env=clean, cwd=tmp_path
    )
    shipped = sorted(p.stem for p in (ROOT / "flows" / "sql" / "reports").glob("*.sql"))
    assert listed.returncode != 0
    assert f"reports: {', '.join(shipped)}" in " ".join(listed.stdout.split()), listed.stdout

    # The chart's init container: the recovery store made by the installed command.
    store = tmp_path / "recovery" / "store"
    init = [str(venv / "bin" / "clickstream"), "recovery", "init", str(store), "--partitions", "2"]
    run(init, env=clean, cwd=tmp_path)
    assert sorted(p.name for p in store.iterdir()) == ["part-0.sqlite3", "part-1.sqlite3"]
