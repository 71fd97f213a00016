"""Chalice's `requirements.txt`, generated from pyproject.toml (the one source).

`python -m infra.requirements` prints it; `--check FILE` exits 1 if FILE is
stale; `--vendor DIR` installs the packages that must come without their
dependencies into DIR (Chalice's `vendor/`). boto3/botocore are never listed:
the Lambda runtime provides them; nor is chalice, whose runtime module Chalice
adds to the package itself (the CLI and its dependencies have no place in
Lambda).
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_PACKAGED = {"boto3", "botocore", "chalice"}
#: Packages whose only heavy dependency is botocore: Chalice would bundle
#: botocore (~20 MB) with them, so they are vendored without dependencies.
VENDORED = {"pynamodb"}


def _name(requirement: str) -> str:
    for mark in "[<>=!~; ":
        requirement = requirement.split(mark)[0]
    return requirement.strip().lower()


def _dependencies() -> list[str]:
    return list(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])


def render() -> str:
    lines = [
        "# Generated from pyproject.toml by `make requirements`; do not edit.",
        "# Chalice bundles these into the Lambda package (boto3 comes with Lambda).",
    ]
    for requirement in _dependencies():
        if _name(requirement) not in NOT_PACKAGED | VENDORED:
            lines.append(requirement)
    return "\n".join(lines) + "\n"


def vendor(target: Path) -> None:
    """pip-install VENDORED packages, without dependencies, into `target`."""
    wanted = [r for r in _dependencies() if _name(r) in VENDORED]
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            # Bytecode made here is stale in the zip (its timestamps differ): Lambda never uses it.
            "--no-compile",
            "--upgrade",
            "--target",
            str(target),
            *wanted,
        ],
        check=True,
    )


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "--vendor":
        vendor(Path(argv[1]))
        return 0
    if len(argv) == 2 and argv[0] == "--check":
        if Path(argv[1]).read_text() != render():
            print(f"{argv[1]} is stale: run `make requirements`", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
