"""The action contract, the run context, log capture and the registry."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from importlib import import_module
from importlib.metadata import entry_points
from typing import Any

from pydantic import BaseModel, ValidationError

from chalicelib.clock import Clock
from chalicelib.errors import ValidationFailed, from_pydantic
from chalicelib.jobs.model import Job
from chalicelib.settings import Settings


class ActionFailed(Exception):
    """Raised by an action to fail its run with a message (no traceback recorded)."""


class LogLimitExceeded(Exception):
    """The run's log passed `log_max_size` under `log_on_full: kill_task`."""


@dataclass(frozen=True)
class Report:
    """What an action may return to report per-target counts with its result."""

    result: Any = None
    success_num: int = 0
    failed_num: int = 0
    skip_num: int = 0


class LogCapture:
    """A run's log, capped at `max_bytes` with the task's `log_on_full` policy:
    `drop_new` keeps the head, `drop_old` keeps the tail, `kill_task` fails the run."""

    def __init__(self, max_bytes: int, on_full: str, clock: Clock) -> None:
        self._max = max_bytes
        self._on_full = on_full
        self._clock = clock
        self._lines: list[str] = []
        self._size = 0
        self.truncated = False
        self._lock = threading.Lock()

    def info(self, message: str) -> None:
        self._write("INFO", message)

    def warning(self, message: str) -> None:
        self._write("WARNING", message)

    def error(self, message: str) -> None:
        self._write("ERROR", message)

    def _write(self, level: str, message: str) -> None:
        line = f"{self._clock.now().isoformat(timespec='milliseconds')} {level} {message}\n"
        size = len(line.encode())
        with self._lock:
            if self._size + size <= self._max:
                self._lines.append(line)
                self._size += size
                return
            self.truncated = True
            if self._on_full == "kill_task":
                raise LogLimitExceeded("log limit exceeded")
            if self._on_full == "drop_old":
                self._lines.append(line)
                self._size += size
                while self._size > self._max and self._lines:
                    self._size -= len(self._lines.pop(0).encode())

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._lines)


@dataclass
class ActionContext:
    """What a running action sees: its job, a captured logger, its deadline,
    whether it has been asked to stop (`cancelled`), and the operator's settings
    (endpoints, allow-lists) for actions that reach out."""

    job: Job
    log: LogCapture
    deadline: datetime
    clock: Clock
    settings: Settings
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def cancel(self) -> None:
        self._stop.set()

    def wait(self, seconds: float) -> bool:
        """Sleep up to `seconds`, waking early when cancelled; True if cancelled."""
        return self._stop.wait(seconds)


@dataclass(frozen=True)
class Action:
    name: str
    args_model: type[BaseModel]
    run: Callable[[ActionContext, Any], Any]
    description: str = ""
    requires_approval: bool = False

    def schema(self) -> dict[str, Any]:
        return self.args_model.model_json_schema()


class Registry:
    def __init__(self, actions: list[Action] | None = None) -> None:
        self._actions: dict[str, Action] = {}
        for action in actions or []:
            self.add(action)

    def add(self, action: Action) -> None:
        if action.name in self._actions:
            raise ValueError(f"action {action.name!r} is registered twice")
        self._actions[action.name] = action

    def get(self, name: str) -> Action | None:
        return self._actions.get(name)

    def names(self) -> list[str]:
        return sorted(self._actions)

    def checked(self, name: str, args: dict[str, Any], *, location: str = "body") -> Action:
        """The action `name`, once `args` are valid for it: what a queue submission
        and a task (created or merge-patched) must name. ValidationFailed (422) at
        `<location>.action` for an unknown action, at `<location>.args.<field>`
        for arguments its model refuses."""
        action = self.get(name)
        if action is None:
            raise ValidationFailed.at(
                f"{location}.action", "is not a registered action (see GET /v1/queue/actions)", name
            )
        try:
            action.args_model.model_validate(args)
        except ValidationError as exc:
            raise from_pydantic(exc, f"{location}.args") from None
        return action

    def all(self) -> list[Action]:
        return [self._actions[name] for name in self.names()]


_registries: dict[tuple[str, ...], Registry] = {}


def registry(settings: Settings) -> Registry:
    """Built-in actions, those of installed `tickwork.actions` plugins, and the
    `ACTIONS` of each module in `settings.action_modules`. Built once per
    module list."""
    modules = settings.action_modules
    if modules not in _registries:
        from chalicelib.actions.builtin import BUILTIN

        found = Registry(list(BUILTIN))
        for entry in entry_points(group="tickwork.actions"):
            for action in _actions_of(entry.load()):
                found.add(action)
        for name in modules:
            for action in _actions_of(getattr(import_module(name), "ACTIONS", None), name):
                found.add(action)
        _registries[modules] = found
    return _registries[modules]


def _actions_of(plugin: Any, module: str | None = None) -> list[Action]:
    """An entry point's Action or list of them; a module's `ACTIONS` list."""
    actions = list(plugin) if isinstance(plugin, list | tuple) else [plugin]
    if not actions or not all(isinstance(action, Action) for action in actions):
        where = f"module {module!r}: ACTIONS" if module else "a tickwork.actions entry point"
        raise TypeError(f"{where} must be an Action or a list of them")
    return actions
