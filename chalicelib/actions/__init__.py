"""Actions: named handlers with a pydantic args model (DESIGN §6).

    registry(settings).get("echo").run(ctx, args)

Built-ins live in `chalicelib.actions.builtin`; plugins add actions through
the `tickwork.actions` entry-point group (each entry point names an `Action`
or a list of them) or through `TICKWORK_ACTION_MODULES` (modules exporting
`ACTIONS`). docs/actions.md describes every action.
"""

from chalicelib.actions.base import (
    Action,
    ActionContext,
    ActionFailed,
    LogCapture,
    LogLimitExceeded,
    Registry,
    Report,
    registry,
)

__all__ = [
    "Action",
    "ActionContext",
    "ActionFailed",
    "LogCapture",
    "LogLimitExceeded",
    "Registry",
    "Report",
    "registry",
]
