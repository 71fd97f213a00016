"""Bytecode for the deployment package: what `make package` adds after `chalice package`.

    python -m infra.package build/chalice

Lambda runs the package from a read-only directory, and Chalice ships only
sources (plus whatever bytecode lies in the tree, stale in the zip: its
timestamps are not the sources'), so every cold start compiled every module
it imported: about half of the API's cold import. This adds, for each module
that the functions load, bytecode that Python uses without comparing it with
the source (`unchecked-hash`, PEP 552; the zip is built in one go, so the two
never differ): all of `app.py` and `chalicelib/`, and of the dependencies the
modules that a probe loads in a fresh interpreter beside only the Lambda
runtime's modules (`import app`, a request for `/openapi.json`, which builds
every model's schema, and every part of `Services`).
Only those: bytecode of every dependency module would take the zip past
5 MB. The build interpreter must be the runtime's version (`sam.json` says
which), or the bytecode would be ignored; otherwise this refuses.
"""

from __future__ import annotations

import importlib.util
import json
import py_compile
import subprocess
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path
from typing import Any

#: What the Lambda Python runtime brings besides the standard library.
LAMBDA_RUNTIME = ("boto3", "botocore", "jmespath", "s3transfer", "urllib3", "six.py")
#: Chalice's timestamp for every entry (the zip is the same for the same sources).
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
#: Answers one API request and builds every part of Services, as the functions'
#: paths would, then prints the answer and the file of every module it loaded.
PROBE = """
import json, sys
package, runtime = sys.argv[1], sys.argv[2]
sys.path[:0] = [package, runtime]
import app
# A request that imports every route module and builds every model's schema
# (pydantic imports some modules then).
request = {
    "resource": "/openapi.json", "path": "/openapi.json", "httpMethod": "GET",
    "headers": {}, "multiValueHeaders": {}, "queryStringParameters": None,
    "multiValueQueryStringParameters": None, "pathParameters": None,
    "stageVariables": None, "body": None, "isBase64Encoded": False,
    "requestContext": {"resourcePath": "/openapi.json", "httpMethod": "GET",
                       "stage": "api", "requestId": "r", "identity": {"sourceIp": "192.0.2.1"}},
}
class Context:
    aws_request_id = "r"
    function_name = "tickwork-dev"
answer = app.app(request, Context())
from chalicelib import wiring
current = wiring.services()
for name, value in vars(wiring.Services).items():
    if isinstance(value, wiring.part):
        getattr(current, name)
files = sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)})
print(json.dumps({"status": answer["statusCode"], "body": answer["body"], "files": files}))
"""


def runtime_dir(target: Path) -> Path:
    """The Lambda runtime's own modules, linked from this environment's site-packages."""
    site = Path(sysconfig.get_paths()["purelib"])
    for name in LAMBDA_RUNTIME:
        (target / name).symlink_to(site / name)
    return target


def probe(unpacked: Path, runtime: Path) -> dict[str, Any]:
    """Run PROBE on the unpacked package beside only the runtime's modules (`-I -S`:
    nothing else of this environment; `-B`: it writes no bytecode)."""
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", PROBE, str(unpacked), str(runtime)],
        capture_output=True,
        text=True,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"},
    )
    if done.returncode != 0:
        raise RuntimeError(f"the package does not run alone:\n{done.stderr}")
    found: dict[str, Any] = json.loads(done.stdout)
    if found["status"] != 200:
        raise RuntimeError(f"the package answered {found['status']}: {found['body'][:500]}")
    return found


def loaded_sources(unpacked: Path, runtime: Path) -> list[Path]:
    """The package's source files that the probe loads."""
    files = probe(unpacked, runtime)["files"]
    return [Path(path) for path in files if path.startswith(str(unpacked)) and path.endswith(".py")]


def runtime_version(build: Path) -> str:
    """The functions' runtime (`python3.11`), from the package's template."""
    template = json.loads((build / "sam.json").read_text())
    runtimes: set[str] = {
        str(resource["Properties"]["Runtime"])
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    if len(runtimes) != 1:
        raise SystemExit(f"sam.json names {len(runtimes)} runtimes: {sorted(runtimes)}")
    return runtimes.pop()


def add_bytecode(build: Path) -> int:
    """Add unchecked-hash bytecode to `build/deployment.zip`; returns the files added."""
    ours = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtime_version(build) != ours:
        raise SystemExit(f"the functions run {runtime_version(build)}; this is {ours}")
    package = build / "deployment.zip"
    with tempfile.TemporaryDirectory() as scratch:
        unpacked, runtime = Path(scratch, "package"), Path(scratch, "runtime")
        runtime.mkdir()
        with zipfile.ZipFile(package) as archive:
            archive.extractall(unpacked)
        sources = set(loaded_sources(unpacked, runtime_dir(runtime)))
        sources |= {unpacked / "app.py", *(unpacked / "chalicelib").rglob("*.py")}
        with zipfile.ZipFile(package, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            present = set(archive.namelist())
            for source in sorted(sources):
                cached = Path(importlib.util.cache_from_source(str(source)))
                name = cached.relative_to(unpacked).as_posix()
                if name in present:  # a cache the build left: Lambda would recompile it
                    raise SystemExit(f"{name}: the package holds bytecode it did not make")
                py_compile.compile(
                    str(source),
                    cfile=str(cached),
                    doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
                )
                entry = zipfile.ZipInfo(name, ZIP_TIME)
                entry.compress_type = zipfile.ZIP_DEFLATED
                entry.external_attr = 0o644 << 16
                archive.writestr(entry, cached.read_bytes())
    return len(sources)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m infra.package BUILD_DIR", file=sys.stderr)
        return 2
    added = add_bytecode(Path(argv[0]))
    size = (Path(argv[0]) / "deployment.zip").stat().st_size
    print(f"Added bytecode of {added} modules: deployment.zip is {size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
