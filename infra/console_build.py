"""Build the web console into a static site: `python -m infra.console_build OUT_DIR`.

Jinja2 renders `console/templates/` (a shared layout and macros) into one HTML
file per page, `console/static/` (CSS, ES modules, icon) is copied as it is,
and `config.js` carries the one thing that differs between deployments: the
API's base URL ("" when the console is served by the API's own origin, as by
the local stack). Nothing is bundled or minified: the browser loads the
modules as written.

The task form is generated from `TaskSpec` (names, defaults, enum options,
bounds and descriptions), so it cannot drift from what the API validates.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import annotated_types
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic.fields import FieldInfo

from chalicelib.approvals.model import ApprovalStatus
from chalicelib.jobs.model import JobStatus
from chalicelib.tasks.model import TaskSpec

CONSOLE = Path(__file__).resolve().parents[1] / "console"
TEMPLATES = CONSOLE / "templates"
STATIC = CONSOLE / "static"


@dataclass(frozen=True)
class Page:
    template: str
    title: str
    #: The navigation entry it highlights ("" for none).
    nav: str = ""
    admin_only: bool = False

    @property
    def output(self) -> str:
        return self.template

    @property
    def script(self) -> str:
        return self.template.removesuffix(".html")


PAGES = (
    Page("signin.html", "Sign in"),
    Page("index.html", "Dashboard", nav="index.html"),
    Page("tasks.html", "Tasks", nav="tasks.html"),
    Page("task.html", "Task", nav="tasks.html"),
    Page("task-form.html", "Task form", nav="tasks.html"),
    Page("jobs.html", "Jobs", nav="jobs.html"),
    Page("job.html", "Job", nav="jobs.html"),
    Page("approvals.html", "Approvals", nav="approvals.html"),
    Page("observability.html", "Observability", nav="observability.html", admin_only=True),
    Page("dead-letters.html", "Dead letters", nav="dead-letters.html", admin_only=True),
    Page("tokens.html", "Tokens", nav="tokens.html", admin_only=True),
)

#: (href, label, admin only) in the order the navigation shows them.
NAV = (
    ("index.html", "Dashboard", False),
    ("tasks.html", "Tasks", False),
    ("jobs.html", "Jobs", False),
    ("approvals.html", "Approvals", False),
    ("observability.html", "Observability", True),
    ("dead-letters.html", "Dead letters", True),
    ("tokens.html", "Tokens", True),
)

#: The task form's sections: (legend, fields, open by default).
TASK_FORM_SECTIONS: tuple[tuple[str, tuple[str, ...], bool], ...] = (
    ("Task", ("name", "description", "group", "action", "args", "enabled"), True),
    ("Schedule", ("schedule", "timezone"), True),
    (
        "Firing",
        ("kind", "catch_up", "catch_up_window", "on_overlap", "parallelism", "queue_max"),
        False,
    ),
    (
        "Failures",
        ("timeout", "retry_attempts", "retry_backoff", "retry_delay", "pause_after_failures"),
        False,
    ),
    ("Services", ("instances", "restart", "restart_backoff", "restart_delay"), False),
    ("History and logs", ("keep_runs", "keep_for", "log_max_size", "log_on_full"), False),
    ("Access", ("api_trigger", "requires_approval"), False),
)

_LABELS = {
    "api_trigger": "Can be triggered through the API",
    "requires_approval": "Every run waits for approval",
    "log_max_size": "Log cap (bytes)",
    "queue_max": "Most firings waiting for a slot (on_overlap: queue)",
    "args": "Arguments (JSON object)",
    "timezone": "Time zone",
}
_SECONDS = {
    "catch_up_window",
    "retry_delay",
    "timeout",
    "restart_delay",
    "keep_for",
}


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: str  # text, textarea, json, number, select, checkbox
    default: Any
    options: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    step: str = "1"
    help: str = ""
    required: bool = False
    #: A `<datalist>` id suggesting values ("" for none).
    suggestions: str = ""


def task_form_sections() -> list[tuple[str, list[FormField], bool]]:
    """The task form's fields, from `TaskSpec`, in `TASK_FORM_SECTIONS` order."""
    fields = TaskSpec.model_fields
    placed = [name for _, names, _ in TASK_FORM_SECTIONS for name in names]
    missing = set(fields) - set(placed)
    if missing:  # a new policy must get a place in the form
        raise RuntimeError(f"TaskSpec fields without a place in the task form: {sorted(missing)}")
    return [
        (legend, [_form_field(name, fields[name]) for name in names], is_open)
        for legend, names, is_open in TASK_FORM_SECTIONS
    ]


def _form_field(name: str, info: FieldInfo) -> FormField:
    annotation = info.annotation
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    if isinstance(default, Enum):
        default = default.value
    label = _LABELS.get(name, name.replace("_", " ").capitalize())
    if name in _SECONDS:
        label += " (seconds)"
    help_text = (info.description or "").replace("`", "")  # the API's docs are Markdown
    bounds = {type(m): m for m in info.metadata}
    minimum = _bound(bounds, annotated_types.Ge, "ge")
    if minimum is None:
        minimum = _bound(bounds, annotated_types.Gt, "gt")
    maximum = _bound(bounds, annotated_types.Le, "le")
    common: dict[str, Any] = {"name": name, "label": label, "default": default, "help": help_text}
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return FormField(kind="select", options=tuple(m.value for m in annotation), **common)
    if annotation is bool:
        return FormField(kind="checkbox", **common)
    if annotation in (int, float) or name in _SECONDS:
        step = "1" if annotation is int else "any"
        return FormField(kind="number", minimum=minimum, maximum=maximum, step=step, **common)
    if name == "args":
        return FormField(kind="json", **{**common, "default": "{}"})
    if name == "description":
        return FormField(kind="textarea", **{**common, "default": default or ""})
    suggestions = {"timezone": "zones", "action": "actions"}.get(name, "")
    return FormField(
        kind="text",
        required=name in ("name", "action"),
        suggestions=suggestions,
        **{**common, "default": default or ""},
    )


def _bound(bounds: dict[type, Any], kind: type, attribute: str) -> float | None:
    found = bounds.get(kind)
    return None if found is None else float(getattr(found, attribute))


def content_security_policy(api_base: str) -> str:
    """The console's CSP: scripts, styles and icons from its own files only (no
    `unsafe-inline`), requests to itself and the API. `frame-ancestors` is not
    here: browsers ignore it in a `<meta>`; servers that can send headers add it."""
    connect = ["'self'"]
    origin = api_origin(api_base)
    if origin:
        connect.append(origin)
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src {' '.join(connect)}",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )


def api_origin(api_base: str) -> str | None:
    """`https://host[:port]` of an absolute API base URL; None for "" (same origin)."""
    if not api_base:
        return None
    parts = urlsplit(api_base)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"API base URL must be absolute http(s) or empty, not {api_base!r}")
    return f"{parts.scheme}://{parts.netloc}"


def build(out_dir: Path, *, api_base: str = "") -> list[Path]:
    """Render every page and copy the assets into `out_dir`; returns the files written."""
    api_base = api_base.rstrip("/")
    csp = content_security_policy(api_base)
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    context = {
        "csp": csp,
        "nav": NAV,
        "task_form_sections": task_form_sections(),
        "job_statuses": [s.value for s in JobStatus],
        "approval_statuses": [s.value for s in ApprovalStatus],
    }
    for page in PAGES:
        html = env.get_template(page.template).render(page=page, **context)
        written.append(_write(out_dir / page.output, html))
    config = {"apiBase": api_base}
    written.append(
        _write(
            out_dir / "config.js",
            "// Generated by infra/console_build.py: where the console finds the API.\n"
            f"export const config = Object.freeze({json.dumps(config)});\n",
        )
    )
    static_out = out_dir / "static"
    if static_out.exists():
        shutil.rmtree(static_out)
    shutil.copytree(STATIC, static_out)
    written.extend(sorted(p for p in static_out.rglob("*") if p.is_file()))
    return written


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out_dir", type=Path, help="where the site is written")
    parser.add_argument(
        "--api-base",
        default="",
        help="the API's base URL for a console served elsewhere (e.g. the stage's "
        "API Gateway URL); empty: the console's own origin",
    )
    args = parser.parse_args(list(argv) if argv is not None else None)
    files = build(args.out_dir, api_base=args.api_base)
    print(f"Console: {len(files)} files in {args.out_dir}/ (API: {args.api_base or 'same origin'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
