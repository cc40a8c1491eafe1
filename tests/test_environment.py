"""environment.yml (conda) and pyproject.toml (pip) must list the same dependencies."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _norm(spec: str) -> tuple[str, str]:
    name, ver = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", spec).groups()
    return name.lower().replace("_", "-"), ver.replace(" ", "")


def pyproject_deps() -> dict[str, str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = meta["dependencies"] + meta["optional-dependencies"]["test"]
    return dict(_norm(s) for s in specs)


def conda_deps() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    specs = [d for d in env["dependencies"] if isinstance(d, str) and not d.startswith(("python=", "pip"))]
    return dict(_norm(s) for s in specs)


def test_same_dependencies_and_versions():
    pip, conda = pyproject_deps(), conda_deps()
    assert sorted(set(pip) - set(conda)) == [], "in pyproject.toml but not environment.yml"
    assert sorted(set(conda) - set(pip)) == [], "in environment.yml but not pyproject.toml"
    assert {k: v for k, v in pip.items() if conda[k] != v} == {}, "version specs differ"


def test_python_version_agrees():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda_py = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert meta["requires-python"] == ">=" + conda_py.split("=")[1]
