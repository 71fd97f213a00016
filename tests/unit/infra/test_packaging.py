"""The deployment package stays lean and in step with pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra.requirements import render

ROOT = Path(__file__).resolve().parents[3]


def test_requirements_txt_is_generated_from_pyproject() -> None:
    assert (ROOT / "requirements.txt").read_text() == render()


def test_boto3_botocore_and_the_chalice_cli_stay_out_of_the_package() -> None:
    listed = render().lower()
    for name in ("boto3", "botocore", "chalice"):
        assert f"\n{name}" not in listed


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
