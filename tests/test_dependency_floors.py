"""Every version floor in pyproject.toml is one the suite runs on: the installed release satisfies it and
is in the same major release (minor for 0.x), so a floor cannot silently promise an API we never test
(`transformers>=4.46` while the code imports `transformers.initialization`, new in 5.0)."""

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

PYPROJECT = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
REQUIREMENTS = [
    Requirement(line)
    for line in (
        *PYPROJECT["dependencies"],
        *(dep for group in PYPROJECT["optional-dependencies"].values() for dep in group),
    )
]


def _floor(requirement: Requirement) -> Version | None:
    floors = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
    return max(floors) if floors else None


def _release_line(v: Version) -> tuple[int, ...]:
    return (v.major,) if v.major > 0 else (0, v.minor)


@pytest.mark.parametrize("requirement", REQUIREMENTS, ids=lambda r: r.name)
def test_floor_is_the_release_line_we_test(requirement):
    floor = _floor(requirement)
    assert floor is not None, f"{requirement.name} has no floor"
    try:
        installed = Version(re.sub(r"\+.*$", "", version(requirement.name)))
    except PackageNotFoundError:
        pytest.skip(f"{requirement.name} is not installed here (an extra the suite does not use)")
    assert installed in requirement.specifier, f"{requirement.name} {installed} violates {requirement}"
    assert _release_line(floor) == _release_line(installed), (
        f"{requirement.name}: the floor {floor} is in another release line than the tested {installed}"
    )
