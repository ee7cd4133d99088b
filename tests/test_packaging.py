"""The two README commands and the pinned test environment stay in step.

The README's test command installs the ``test`` extra with the pins of
``constraints/test.txt``; ``.ci/run`` runs exactly that command. A dependency
added to an extra without refreshing the pins, a pin outside its range, or a
README command that drifts from CI's fails here.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints" / "test.txt"


def _pins() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for number, line in enumerate(CONSTRAINTS.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([^\s;]+)", line)
        assert match, f"{CONSTRAINTS.name}:{number}: not a 'name==version' pin: {line!r}"
        name = canonicalize_name(match.group(1))
        assert name not in pins, f"{CONSTRAINTS.name}:{number}: {name} pinned twice"
        pins[name] = Version(match.group(2))
    return pins


def _test_requirements() -> list[Requirement]:
    """The ``test`` extra's requirements, its own extras expanded."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras: dict[str, list[str]] = project["optional-dependencies"]
    seen: set[str] = set()
    found: list[Requirement] = []

    def expand(extra: str) -> None:
        if extra in seen:
            return
        seen.add(extra)
        for text in extras[extra]:
            requirement = Requirement(text)
            if canonicalize_name(requirement.name) == canonicalize_name(project["name"]):
                for inner in sorted(requirement.extras):
                    expand(inner)
            else:
                found.append(requirement)

    found.extend(Requirement(text) for text in project["dependencies"])
    expand("test")
    return found


def test_every_test_requirement_is_pinned_within_its_range() -> None:
    pins = _pins()
    environment = default_environment()
    checked = 0
    for requirement in _test_requirements():
        if requirement.marker is not None and not requirement.marker.evaluate(
            {**environment, "extra": ""}
        ):
            continue  # another platform's package: it resolves freely there
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not pinned in {CONSTRAINTS.relative_to(ROOT)}"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{CONSTRAINTS.relative_to(ROOT)} pins {name}=={pins[name]}, outside {requirement}"
        )
        checked += 1
    assert checked >= 20


def test_readme_test_command_is_the_one_ci_runs_and_it_uses_the_pins() -> None:
    readme = (ROOT / "README.md").read_text()
    quick_start = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.strip() for line in quick_start.strip().splitlines()]
    assert len(commands) == 2, commands
    test_command = commands[1]
    assert "-c constraints/test.txt" in test_command
    assert test_command.endswith("python -m pytest")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in [line.strip() for line in ci], (
        ".ci/run must run exactly the README's test command"
    )
