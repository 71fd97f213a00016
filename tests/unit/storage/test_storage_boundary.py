"""PynamoDB stays in the storage layer: no module outside `chalicelib/storage`
imports pynamodb or names a PynamoDB model (a `*Record` of storage.tables), so
services see domain types (Job, Task, ApprovalRequest), never rows."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
STORAGE = ROOT / "chalicelib" / "storage"


def outside_storage() -> list[Path]:
    return [ROOT / "app.py"] + [
        path for path in (ROOT / "chalicelib").rglob("*.py") if STORAGE not in path.parents
    ]


def offences(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name.split(".")[0] == "pynamodb"]
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module.split(".")[0] == "pynamodb":
                found.append(node.module)
            elif node.module == "chalicelib.storage.tables":
                found += [a.name for a in node.names if a.name.endswith("Record")]
    return found


def test_no_module_outside_storage_imports_pynamodb_or_its_models() -> None:
    found = {
        str(path.relative_to(ROOT)): names
        for path in outside_storage()
        if (names := offences(path))
    }
    assert found == {}


def test_the_check_sees_an_offence() -> None:
    assert offences(STORAGE / "approvals.py")  # a storage module does import them
