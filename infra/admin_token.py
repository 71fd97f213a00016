"""`make admin-token STAGE=<stage>`: the first admin token of a deployed stage.

`make run` gives the local stack a bootstrap admin token; a stage in AWS has
none until its operator issues one. This writes an admin token into the
stage's tokens table with the caller's own AWS credentials (the deployer's,
not any function's role) and prints its secret once; further tokens are
issued over the API (`POST /v1/admin/tokens`) or in the console.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from chalicelib.auth.service import DEFAULT_PROJECT, Role
from chalicelib.settings import Settings
from chalicelib.wiring import Services


def issue_admin_token(settings: Settings, project: str, name: str) -> str:
    """Issue an admin token of `project` in the settings' stage; returns its secret."""
    return Services.build(settings).tokens.issue(project, Role.ADMIN, name).secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage")
    parser.add_argument("--project", default=DEFAULT_PROJECT)
    parser.add_argument("--name", default="operator")
    args = parser.parse_args(argv)
    settings = replace(Settings.from_env(), stage=args.stage)
    secret = issue_admin_token(settings, args.project, args.name)
    print(f"Admin token of project {args.project} in stage {args.stage} (shown once):")
    print(secret)
    return 0


if __name__ == "__main__":
    sys.exit(main())
