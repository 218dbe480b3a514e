"""A non-editable wheel installs the students as ``froster.adapters``, never as ``adapters``."""
from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-q", "-w", str(out)],
        check=True,
        cwd=out,
    )
    (path,) = out.glob("froster_distill-*.whl")
    return path


def test_wheel_maps_adapters_into_the_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "froster/adapters/__init__.py" in names
    assert not any(name.startswith("adapters/") for name in names)
    # Every module of the source tree ships: a subpackage missing from pyproject's list would not.
    sources = [p.relative_to(REPO).as_posix() for p in (REPO / "froster").rglob("*.py")]
    sources += ["froster/adapters/" + p.relative_to(REPO / "adapters").as_posix() for p in (REPO / "adapters").rglob("*.py")]
    missing = sorted(set(sources) - set(names))
    assert not missing, f"modules left out of the wheel (add their package to pyproject.toml): {missing}"


def test_installed_wheel_imports_froster_adapters(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True)
    # PEP 561: without the marker beside the installed package, type checkers ignore its annotations.
    assert (target / "froster" / "py.typed").is_file()
    # -S skips site-packages' .pth files, so a development (editable) install cannot answer the
    # import; dependencies come from site-packages added to the path by hand.
    script = (
        "import importlib.util, froster, froster.adapters;"
        "assert froster.__file__.startswith(%r), froster.__file__;"
        "assert importlib.util.find_spec('adapters') is None;"
        "print(froster.list_students())" % str(target)
    )
    env = {"PYTHONPATH": f"{target}:{sysconfig.get_paths()['purelib']}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-S", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "vclip" in result.stdout
