"""Cold start of each Lambda function: its import path against a bare Chalice function's.

    python -m bench.cold_start [--runs 9] [--python PATH] [--extra STATEMENT] ...

Each figure is a median over `--runs` fresh interpreters, in ms, of what a
function's cold start imports, measured in the interpreter as Lambda runs it:
`python -I -S` with `sys.path` = the repository (the task root) and the
environment's site-packages (the runtime), so no `.pth` hook (editable
installs, `_distutils_hack`) runs, with the environment Lambda gives that
function (`AWS_LAMBDA_FUNCTION_NAME`, `_HANDLER`, `TICKWORK_STAGE`, ...). A run
that finds pytest, moto or other dev tooling imported stops the script.

Rows: the baseline, a bare `import chalice.app, boto3`; each function's
`import app` then its handler resolved as Lambda resolves it (the attribute
its Handler string `app.<name>` names: `app.app` registers the API's routes);
and, in the last columns, that plus the `Services` parts its handler's first
call builds (`FIRST_CALL`), which import the modules the call runs on (no AWS
call is made: clients are made on first use); for the API, after a request
(`API_REQUEST`), which imports its route's module. Ratios are to the baseline's
wall-clock median. `--extra` statements are timed after `import app`, one row
each (what a candidate dependency would add; `--python` runs another
interpreter, such as a scratch virtualenv that holds it). Last, the size of
`build/chalice/deployment.zip` when `make package` made one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.package import runtime_dir

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "build" / "chalice" / "deployment.zip"
#: The issue's bounds: every function's import path within 1.3x the baseline, a 5 MB zip.
MAX_RATIO = 1.3
MAX_PACKAGE_BYTES = 5_000_000
#: Never imported by code as Lambda runs it.
DEV_TOOLING = ("pytest", "moto", "infra", "bench", "tests", "jinja2", "mypy", "httpx")
STAGE = "dev"

#: One fresh interpreter: argv = [statements before, statement timed, first-call
#: statement]; prints the timings (ms) and the modules loaded at the end.
CHILD = """
import json, sys, time
setup, timed, first_call = sys.argv[1:4]
exec(setup)
wall, cpu = time.perf_counter(), time.process_time()
exec(timed)
found = {"wall": (time.perf_counter() - wall) * 1000, "cpu": (time.process_time() - cpu) * 1000}
if first_call:
    exec(first_call)
    found["first_wall"] = (time.perf_counter() - wall) * 1000
    found["first_cpu"] = (time.process_time() - cpu) * 1000
found["modules"] = sorted(sys.modules)
print(json.dumps(found))
"""

#: The `Services` parts each handler's first call reads (chalicelib/engine/handlers.py);
#: for the API, those of a request to /v1/scheduled-tasks (the token, the tasks).
FIRST_CALL = {
    "api_handler": ("tokens", "tasks"),
    "tick": ("tick",),
    "tick_shard": ("tick",),
    "execute_jobs": ("executor",),
    "dead_letters": ("executor",),
}
#: The API's first call is a request, as API Gateway hands it to the function:
#: `GET /v1/scheduled-tasks` without a token (401, before any AWS call), which
#: imports the route's module and builds the token service, then the parts
#: that an authenticated one goes on to build.
API_REQUEST = {
    "resource": "/v1/scheduled-tasks",
    "path": "/v1/scheduled-tasks",
    "httpMethod": "GET",
    "headers": {"Host": "api.example.com"},
    "multiValueHeaders": {"Host": ["api.example.com"]},
    "queryStringParameters": None,
    "multiValueQueryStringParameters": None,
    "pathParameters": None,
    "stageVariables": None,
    "body": None,
    "isBase64Encoded": False,
    "requestContext": {
        "resourcePath": "/v1/scheduled-tasks",
        "httpMethod": "GET",
        "path": "/api/v1/scheduled-tasks",
        "stage": "api",
        "requestId": "r",
        "identity": {"sourceIp": "192.0.2.1"},
    },
}
API_ANSWER = 401


@dataclass(frozen=True)
class Function:
    """A Lambda function of the app: its Chalice name and its Handler string."""

    name: str
    handler: str

    @property
    def deployed_name(self) -> str:
        """`chalice deploy`'s name for it (docs/deploy.md)."""
        if self.name == "api_handler":
            return f"tickwork-{STAGE}"
        return f"tickwork-{STAGE}-{self.name}"

    def environment(self) -> dict[str, str]:
        """What Lambda sets for this function (and the stage's config: .chalice/config.json)."""
        return {
            "PATH": "/usr/bin:/bin",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_LAMBDA_FUNCTION_NAME": self.deployed_name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "1024",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.11",
            "LAMBDA_TASK_ROOT": str(ROOT),
            "_HANDLER": self.handler,
            "TICKWORK_STAGE": STAGE,
            "TICKWORK_DUE_SHARDS": "64",
        }

    def statement(self) -> str:
        """`import app`, then the handler looked up as Lambda's runtime does."""
        module, attribute = self.handler.rsplit(".", 1)
        return f"import {module}; getattr({module}, {attribute!r})"

    def first_call(self) -> str:
        parts = FIRST_CALL[self.name]
        reads = "; ".join(f"current.{part}" for part in parts)
        request = ""
        if self.name == "api_handler":
            request = (
                f"answer = app.app({API_REQUEST!r}, None)\n"
                f"assert answer['statusCode'] == {API_ANSWER}, answer\n"
            )
        return f"{request}from chalicelib.wiring import services; current = services(); {reads}"


def functions() -> list[Function]:
    """The API function and every other function the app registers, with their
    Handler strings as `chalice package` writes them (read from the app)."""
    import app

    found = [Function("api_handler", "app.app")]
    registered: list[Any] = [*app.app.event_sources, *app.app.pure_lambda_functions]
    for source in registered:
        found.append(Function(source.name, source.handler_string))
    return found


def site_paths(python: str) -> list[str]:
    """The interpreter's site-packages: the runtime, for the tree's rows."""
    if python == sys.executable:
        return list(
            dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
        )
    query = "import sysconfig as s; print(s.get_paths()['purelib'])"
    other = subprocess.run([python, "-c", query], capture_output=True, text=True, check=True)
    return [other.stdout.strip()]


def run_child(
    python: str,
    timed: str,
    env: dict[str, str],
    first_call: str = "",
    setup: str = "",
    paths: list[str] | None = None,
) -> dict[str, object]:
    """One fresh interpreter as Lambda runs one: timings and the modules it loaded.
    `paths`: its `sys.path` (default: the repository, then site-packages); with
    them given (an unpacked package beside the runtime's modules), it writes no
    bytecode, as Lambda cannot."""
    path = paths or [str(ROOT), *site_paths(python)]
    prefix = f"import sys; sys.path[:0] = {path!r}\n"
    flags = ["-I", "-S", "-B"] if paths else ["-I", "-S"]
    done = subprocess.run(
        [python, *flags, "-c", CHILD, prefix + setup, timed, first_call],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"{timed!r} failed:\n{done.stderr}")
    found: dict[str, object] = json.loads(done.stdout)
    modules = found["modules"]
    assert isinstance(modules, list)
    tooling = sorted({m.split(".")[0] for m in modules} & set(DEV_TOOLING))
    if tooling:
        raise SystemExit(f"{timed!r} imported dev tooling: {', '.join(tooling)}")
    return found


def _median(runs: list[dict[str, object]], key: str) -> float:
    return statistics.median(float(run[key]) for run in runs)  # type: ignore[arg-type]


Rows = list[tuple[str, list[dict[str, object]]]]


def measure(python: str, runs: int, extras: list[str], paths: list[str] | None) -> Rows:
    api = Function("api_handler", "app.app")
    rows: Rows = []
    bare = "import chalice.app, boto3"
    rows.append(
        (
            f"bare: {bare}",
            [run_child(python, bare, api.environment(), paths=paths) for _ in range(runs)],
        )
    )
    for function in functions():
        statement, env, first_call = (
            function.statement(),
            function.environment(),
            function.first_call(),
        )
        label = f"{function.name}: import app; {function.handler}"
        rows.append(
            (
                label,
                [run_child(python, statement, env, first_call, paths=paths) for _ in range(runs)],
            )
        )
    for extra in extras:
        found = [
            run_child(python, extra, api.environment(), setup="import app", paths=paths)
            for _ in range(runs)
        ]
        rows.append((f"added after import app: {extra}", found))
    return rows


def show(title: str, rows: Rows) -> None:
    print(title)
    print(
        f"{'median ms':<58} {'wall':>7} {'cpu':>7} {'ratio':>6}"
        f"   {'+ first call: wall':>18} {'cpu':>7} {'ratio':>6}"
    )
    baseline = _median(rows[0][1], "wall")
    for label, runs in rows:
        wall = _median(runs, "wall")
        line = f"{label:<58} {wall:7.1f} {_median(runs, 'cpu'):7.1f} {wall / baseline:6.2f}"
        if "first_wall" in runs[0]:
            first = _median(runs, "first_wall")
            line += f"   {first:18.1f} {_median(runs, 'first_cpu'):7.1f} {first / baseline:6.2f}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh interpreters per row")
    parser.add_argument("--python", default=sys.executable, help="interpreter to measure with")
    parser.add_argument(
        "--extra", action="append", default=[], help="a statement timed after `import app`"
    )
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; {args.runs} runs each; {args.python}")
    show(
        "The source tree (its bytecode cached), site-packages as the runtime:",
        measure(args.python, args.runs, args.extra, None),
    )
    if not PACKAGE.exists():
        print(f"{PACKAGE.relative_to(ROOT)}: absent (`make package` builds it)")
        return
    with tempfile.TemporaryDirectory() as scratch:
        unpacked, runtime = Path(scratch, "package"), Path(scratch, "runtime")
        runtime.mkdir()
        with zipfile.ZipFile(PACKAGE) as archive:
            archive.extractall(unpacked)
        show(
            "The deployment package unpacked, beside only the Lambda runtime's modules:",
            measure(args.python, args.runs, args.extra, [str(unpacked), str(runtime_dir(runtime))]),
        )
    size = PACKAGE.stat().st_size
    print(f"(bound: each function's import path within {MAX_RATIO}x the bare baseline)")
    print(
        f"{PACKAGE.relative_to(ROOT)}: {size:,} bytes ({size / 1e6:.2f} MB; "
        f"bound {MAX_PACKAGE_BYTES / 1e6:.0f} MB)"
    )


if __name__ == "__main__":
    main()
