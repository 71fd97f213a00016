"""Settings: one frozen object built from the environment.

Nothing else in the code reads `os.environ`; handlers receive a `Settings`.
The environment is read when the services are first used (`wiring.services()`),
never when a module is imported, but for what Chalice needs while `app.py` is
imported: `deploy_time()` reads that, and is the only read at import time.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

#: Logical names of Tickwork's tables (`infra/resources.py` defines them; a test
#: checks the two agree).
TABLES = ("tasks", "jobs", "attempts", "approvals", "tokens", "metrics", "uniques")
#: The LLM back ends `trigger_ai` can ask (DESIGN §6).
AI_PROVIDERS = ("bedrock", "openai")
#: What `TICKWORK_APPROVAL_SELF` may say (DESIGN §5, HITL).
APPROVAL_SELF = ("allow", "deny")
#: A web origin: scheme, host (a name, IPv4 or bracketed IPv6) and optional port.
_ORIGIN = re.compile(
    r"(?P<scheme>https?)://(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?"
)


@dataclass(frozen=True)
class Settings:
    stage: str = "dev"
    region: str = "us-east-1"
    #: Endpoint of the embedded AWS (moto) for the local stack and tests;
    #: None in AWS, where boto3 finds the real endpoints.
    aws_endpoint_url: str | None = None
    #: The Lambda function running this code (`AWS_LAMBDA_FUNCTION_NAME`); None
    #: elsewhere. In Lambda, logs are JSON lines and each ended job also prints
    #: a CloudWatch EMF record (docs/observability.md).
    lambda_function_name: str | None = None
    #: Connections each AWS client keeps for concurrent calls (botocore's 10).
    #: The local stack runs its API's, tick's and workers' threads in one
    #: process and raises it, so no thread waits for a connection or opens
    #: one it cannot keep ("Connection pool is full").
    aws_max_connections: int = 10
    #: Number of shards of the sparse due indexes (partition key values
    #: "0".."N-1"). The tick queries every shard, so the shard count bounds the
    #: write rate per partition without making the tick read idle tasks.
    due_shards: int = 8
    #: Largest accepted `args` object, in bytes of compact JSON (DESIGN §2.7).
    max_args_bytes: int = 64 * 1024
    #: Largest accepted request body, in bytes.
    max_body_bytes: int = 1024 * 1024
    #: How far ahead of now the tick fires (SQS DelaySeconds carries each job to
    #: its second). At least one tick period, so no firing waits for a tick.
    lookahead_s: float = 75.0

    # -- actions that reach out (docs/actions.md) --------------------------------
    #: Networks `http_request` may reach although they are not public (CIDRs,
    #: e.g. "127.0.0.0/8"). Empty: only public addresses (the SSRF guard).
    http_allow_networks: tuple[str, ...] = ()
    #: Single destinations `http_request` may reach although they are not
    #: public, as (host, port): a service on this machine, say. Never the
    #: embedded AWS's port, whatever is listed.
    http_allow: tuple[tuple[str, int], ...] = ()
    #: Matrix client-server API of `send_message`: base URL and access token.
    matrix_homeserver: str | None = None
    matrix_access_token: str | None = None
    #: Rooms posted to by webhook instead of Matrix: (room id, URL) pairs.
    room_webhooks: tuple[tuple[str, str], ...] = ()
    #: `trigger_ai`: "bedrock" (Converse) or "openai" (any compatible endpoint).
    ai_provider: str = "bedrock"
    #: Model used when a job names none (a Bedrock model id, or an OpenAI model name).
    ai_model: str | None = None
    #: Further models jobs may name in `model` (ids or ARNs). Only for the
    #: executor's role (`make policies`): it may invoke `ai_model` and these.
    ai_models: tuple[str, ...] = ()
    ai_max_tokens: int = 1024
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    #: DynamoDB tables `run_query` may read (physical names).
    query_tables: tuple[str, ...] = ()
    #: Lambda functions `invoke_lambda` may invoke (names or ARNs). Only for the
    #: executor's role (`make policies`): IAM refuses every other function.
    invoke_functions: tuple[str, ...] = ()
    #: Modules whose `ACTIONS` are added to the registry (plugins without packaging).
    action_modules: tuple[str, ...] = ()

    # -- human in the loop (docs/queue.md) --------------------------------------
    #: How long an approval request waits for a decision before it expires.
    approval_ttl_s: float = 86_400.0
    #: Actions whose jobs wait for approval by default. None: each action's own
    #: default (`Action.requires_approval`); a tuple replaces those defaults.
    approval_actions: tuple[str, ...] | None = None
    #: "allow": any token of the project may decide a request. "deny" (four
    #: eyes): not the token that asked for the run (`requested_by`) nor the one
    #: that last changed the task whose run it is.
    approval_self: str = "allow"

    # -- the web console (docs/console.md) ----------------------------------------
    #: Origin of the console's site when it is not the API's own (CloudFront
    #: calling API Gateway), e.g. "https://console.example.com": `/v1` routes
    #: answer it, and only it, with CORS headers. None: no CORS headers at all.
    #: HTTPS only, but for a loopback host (`console_origin()`).
    console_origin: str | None = None

    def table_name(self, logical: str) -> str:
        """Physical DynamoDB table name of a logical table (`tasks`, `jobs`, ...)."""
        return f"tickwork-{self.stage}-{logical}"

    @staticmethod
    def is_own_table(name: str) -> bool:
        """Whether `name` is one of Tickwork's own tables, of any stage: they hold
        every project's args, results, logs and token hashes."""
        stage_part, _, logical = name.rpartition("-")
        return stage_part.startswith("tickwork-") and logical in TABLES

    def queue_name(self, logical: str) -> str:
        """Physical SQS queue name (`jobs`, `jobs-dlq`)."""
        return f"tickwork-{self.stage}-{logical}"

    def room_webhook(self, room_id: str) -> str | None:
        """The webhook URL configured for a room, if any."""
        return dict(self.room_webhooks).get(room_id)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            stage=env.get("TICKWORK_STAGE", cls.stage),
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or cls.region,
            aws_endpoint_url=env.get("TICKWORK_AWS_ENDPOINT") or None,
            lambda_function_name=env.get("AWS_LAMBDA_FUNCTION_NAME") or None,
            due_shards=int(env.get("TICKWORK_DUE_SHARDS", cls.due_shards)),
            lookahead_s=float(env.get("TICKWORK_LOOKAHEAD_SECONDS", cls.lookahead_s)),
            http_allow_networks=_networks(env.get("TICKWORK_HTTP_ALLOW_NETWORKS", "")),
            http_allow=host_ports(env.get("TICKWORK_HTTP_ALLOW", "")),
            matrix_homeserver=env.get("TICKWORK_MATRIX_HOMESERVER") or None,
            matrix_access_token=env.get("TICKWORK_MATRIX_ACCESS_TOKEN") or None,
            room_webhooks=_room_webhooks(env.get("TICKWORK_ROOM_WEBHOOKS", "")),
            ai_provider=_ai_provider(env.get("TICKWORK_AI_PROVIDER") or cls.ai_provider),
            ai_model=env.get("TICKWORK_AI_MODEL") or None,
            ai_models=_names(env.get("TICKWORK_AI_MODELS", "")),
            ai_max_tokens=int(env.get("TICKWORK_AI_MAX_TOKENS", cls.ai_max_tokens)),
            openai_base_url=env.get("TICKWORK_OPENAI_BASE_URL") or None,
            openai_api_key=env.get("TICKWORK_OPENAI_API_KEY") or None,
            query_tables=_names(env.get("TICKWORK_QUERY_TABLES", "")),
            invoke_functions=_names(env.get("TICKWORK_INVOKE_FUNCTIONS", "")),
            action_modules=_names(env.get("TICKWORK_ACTION_MODULES", "")),
            approval_ttl_s=float(env.get("TICKWORK_APPROVAL_TTL_SECONDS", cls.approval_ttl_s)),
            approval_actions=(
                _names(env["TICKWORK_APPROVAL_ACTIONS"])
                if "TICKWORK_APPROVAL_ACTIONS" in env
                else None
            ),
            approval_self=_approval_self(env.get("TICKWORK_APPROVAL_SELF") or cls.approval_self),
            console_origin=console_origin(env),
        )


@dataclass(frozen=True)
class DeployTime:
    """What Chalice takes when `app.py` is imported (decoration time), which
    `chalice package`/`deploy` turns into the deployed configuration."""

    #: The SQS queues the executor's and the dead-letter handler's event sources
    #: read (`@app.on_sqs_message(queue=...)`), named from the stage.
    jobs_queue: str
    dead_letter_queue: str
    #: The console's origin, from which the `/v1` routes' CORS configuration is
    #: made when they are registered (API Gateway's preflight answers are
    #: generated from it at deploy time); None: no CORS.
    console_origin: str | None


def deploy_time(env: Mapping[str, str] | None = None) -> DeployTime:
    """The settings Chalice needs at decoration time: the one place the
    environment is read while modules are imported (by `app.py` for the event
    sources' queues, by `api/mount.py` for CORS). Only `TICKWORK_STAGE` and
    `TICKWORK_CONSOLE_ORIGIN` are read; everything else waits for the services'
    first use (`Settings.from_env()` in `wiring.services()`)."""
    env = os.environ if env is None else env
    stage = Settings(stage=env.get("TICKWORK_STAGE", Settings.stage))
    return DeployTime(
        jobs_queue=stage.queue_name("jobs"),
        dead_letter_queue=stage.queue_name("jobs-dlq"),
        console_origin=console_origin(env),
    )


def console_origin(env: Mapping[str, str] | None = None) -> str | None:
    """`TICKWORK_CONSOLE_ORIGIN` as `scheme://host[:port]`, or None when unset.

    Also read on its own, by `deploy_time()`: routes take their CORS
    configuration when the app is imported.
    """
    env = os.environ if env is None else env
    origin = (env.get("TICKWORK_CONSOLE_ORIGIN") or "").strip().rstrip("/")
    if not origin:
        return None
    found = _ORIGIN.fullmatch(origin)
    if not found:
        raise ValueError(
            "TICKWORK_CONSOLE_ORIGIN must be one origin like https://console.example.com "
            f"(scheme and host, no path, no wildcard), not {origin!r}"
        )
    if found["scheme"] == "http" and not _is_loopback(found["host"]):
        # Admins type tokens into the console: a page that arrives over plain HTTP
        # can be rewritten on the way to send them elsewhere.
        raise ValueError(
            "TICKWORK_CONSOLE_ORIGIN must be an https:// origin (the console's pages "
            "take tokens); http:// is accepted only for loopback (127.0.0.1, ::1, "
            f"localhost), not {origin!r}"
        )
    return origin


def _is_loopback(host: str) -> bool:
    """Whether a URL's host (IPv6 in brackets) names this machine: `localhost`,
    127.0.0.0/8 or ::1."""
    host = host.removeprefix("[").removesuffix("]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _names(text: str) -> tuple[str, ...]:
    """A comma-separated list, blanks dropped."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _networks(text: str) -> tuple[str, ...]:
    """CIDRs, checked now so a typo stops the start rather than a run."""
    for network in _names(text):
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError as exc:
            raise ValueError(f"TICKWORK_HTTP_ALLOW_NETWORKS: {exc}") from exc
    return _names(text)


def host_ports(text: str) -> tuple[tuple[str, int], ...]:
    """`TICKWORK_HTTP_ALLOW`: comma-separated `host:port` entries (`[::1]:8080` for
    IPv6), host names lower-cased; checked now so a typo stops the start."""
    found: list[tuple[str, int]] = []
    for entry in _names(text):
        host, sep, port = entry.rpartition(":")
        host = host.removeprefix("[").removesuffix("]").lower()
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(
                f"TICKWORK_HTTP_ALLOW: {entry!r} is not host:port (e.g. 127.0.0.1:8080)"
            )
        found.append((host, int(port)))
    return tuple(found)


def _room_webhooks(text: str) -> tuple[tuple[str, str], ...]:
    """A JSON object {room id: webhook URL}."""
    if not text.strip():
        return ()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"TICKWORK_ROOM_WEBHOOKS is not JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(
        isinstance(key, str) and isinstance(url, str) for key, url in data.items()
    ):
        raise ValueError('TICKWORK_ROOM_WEBHOOKS must be {"<room id>": "<url>", ...}')
    return tuple(sorted(data.items()))


def _ai_provider(name: str) -> str:
    if name not in AI_PROVIDERS:
        raise ValueError(f"TICKWORK_AI_PROVIDER must be one of {', '.join(AI_PROVIDERS)}")
    return name


def _approval_self(value: str) -> str:
    if value not in APPROVAL_SELF:
        raise ValueError(
            f"TICKWORK_APPROVAL_SELF must be one of {', '.join(APPROVAL_SELF)}, not {value!r}"
        )
    return value
