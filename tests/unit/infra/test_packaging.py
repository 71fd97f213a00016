"""The deployment package stays lean, in step with pyproject.toml, and runs alone.

The package is what `make package` builds (`make test` builds it before pytest,
for cfn-lint); a test run that finds it missing or older than the code builds it
the same way. It is judged by what it holds and by what it does in an
interpreter that sees only the package and what the Lambda runtime provides.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path
from typing import Any

import pytest

from infra.package import probe as run_probe
from infra.package import runtime_dir as runtime_dir_in
from infra.requirements import render

ROOT = Path(__file__).resolve().parents[3]
PACKAGE = ROOT / "build" / "chalice" / "deployment.zip"


def _newest_source() -> float:
    sources = [ROOT / "app.py", ROOT / "requirements.txt", ROOT / "pyproject.toml"]
    sources += [ROOT / "infra" / "package.py", ROOT / "Makefile"]
    sources += (ROOT / "chalicelib").rglob("*.py")
    return max(path.stat().st_mtime for path in sources)


@pytest.fixture(scope="module")
def package_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    PACKAGE.parent.mkdir(parents=True, exist_ok=True)
    # pytest-xdist's workers may both find it stale: one builds, the other waits.
    with open(PACKAGE.parent / ".build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not PACKAGE.exists() or PACKAGE.stat().st_mtime < _newest_source():
            subprocess.run(["make", "package"], cwd=ROOT, check=True, capture_output=True)
    unpacked = tmp_path_factory.mktemp("package")
    with zipfile.ZipFile(PACKAGE) as package:
        package.extractall(unpacked)
    return unpacked


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The runtime's own modules, linked from this environment's site-packages."""
    return runtime_dir_in(tmp_path_factory.mktemp("runtime"))


@pytest.fixture(scope="module")
def probe(package_dir: Path, runtime_dir: Path) -> dict[str, Any]:
    """The package alone beside the runtime's modules, after one API request
    (`infra.package.probe`, which also finds what needs bytecode)."""
    return run_probe(package_dir, runtime_dir)


def test_requirements_txt_is_generated_from_pyproject() -> None:
    assert (ROOT / "requirements.txt").read_text() == render()


def test_the_package_holds_neither_the_aws_sdk_nor_the_chalice_cli(package_dir: Path) -> None:
    top_level = {path.name for path in package_dir.iterdir()}
    assert not top_level & {"boto3", "botocore", "s3transfer", "moto", "pytest", "infra"}
    chalice = [p.name for p in (package_dir / "chalice").iterdir() if p.name != "__pycache__"]
    assert sorted(chalice) == ["__init__.py", "app.py"]
    assert {"app.py", "chalicelib", "pynamodb", "pydantic", "croniter"} <= top_level


def test_the_package_serves_with_only_the_lambda_runtime_beside_it(
    package_dir: Path, runtime_dir: Path, probe: dict[str, Any]
) -> None:
    assert probe["status"] == 200
    assert "/v1/scheduled-tasks" in json.loads(probe["body"])["paths"]
    stdlib = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"])
    allowed = (str(package_dir), str(runtime_dir), *stdlib)
    assert [path for path in probe["files"] if not path.startswith(allowed)] == []
    loaded = {
        Path(path).relative_to(runtime_dir).parts[0]
        for path in probe["files"]
        if path.startswith(str(runtime_dir))
    }
    assert "botocore" in loaded  # the runtime's, not a copy in the package


def test_every_module_the_api_loads_from_the_package_comes_with_its_bytecode(
    package_dir: Path, probe: dict[str, Any]
) -> None:
    # Lambda cannot write bytecode beside the package: without it, each cold start
    # compiles every module. Unchecked-hash bytecode (PEP 552: flags 0b01) is used
    # whatever the extracted files' timestamps say.
    sources = [path for path in probe["files"] if path.startswith(str(package_dir))]
    assert any("/chalicelib/api/v1/" in path for path in sources)
    assert any("/pydantic/" in path for path in sources)
    flags = {}
    for source in sources:
        if source.endswith(".py"):
            header = Path(importlib.util.cache_from_source(source)).read_bytes()[:8]
            flags[Path(source).relative_to(package_dir).as_posix()] = header[4]
    assert {name: flag for name, flag in flags.items() if flag != 0b01} == {}


def test_app_imports_no_test_or_dev_tooling() -> None:
    code = (
        "import sys, app; "
        "bad = [m for m in ('moto', 'pytest', 'boto3', 'infra') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
