"""The web console in Chromium, on the local stack (`make run`'s process).

Playwright's sync API drives Debian's Chromium (`/usr/bin/chromium`, which
`make test` installs); Playwright's own browser download is never used. The
tests wait with Playwright's auto-waiting `expect`, never with sleeps, and
save a screenshot of each page to `tests/artifacts/console/` (1280 px wide,
and a few at 400 px).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Dialog,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.e2e.conftest import ADMIN_SECRET, ROOT, LocalStack, free_port

# The module's tests share one local stack: under xdist they run on one worker.
pytestmark = pytest.mark.xdist_group("test_console")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "tests" / "artifacts" / "console"
WIDE: ViewportSize = {"width": 1280, "height": 900}
NARROW: ViewportSize = {"width": 400, "height": 860}
#: The browser's zone, so "your time" and a task's zone differ on screen.
USER_ZONE = "America/New_York"
#: How long to wait for the stack's real tick and executors (seconds).
RUN_WAIT_MS = 30_000
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(
        tmp_path_factory.mktemp("console"), free_port(), env={"TICKWORK_TICK_SECONDS": "1"}
    )
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def admin(stack: LocalStack) -> Iterator[httpx.Client]:
    with stack.client(ADMIN_SECRET) as client:
        yield client


@pytest.fixture(scope="module")
def member_secret(admin: httpx.Client) -> str:
    made = admin.post(
        "/v1/admin/tokens", json={"project_id": "default", "role": "member", "name": "alice"}
    )
    assert made.status_code == 201, made.text
    secret: str = made.json()["token"]
    return secret


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail("Chromium is not installed: `make chromium` (apt-get install -y chromium)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Watch:
    """What a page did that a user should never see: dialogs (alert …),
    script errors, CSP refusals, and URLs that carried a secret."""

    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    def dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.csp.append(message.text)


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Browser, watch: Watch) -> Iterator[Page]:
    context = browser.new_context(viewport=WIDE, timezone_id=USER_ZONE, locale="en-US")
    context.set_default_timeout(15_000)
    opened = context.new_page()
    opened.on("dialog", watch.dialog)
    opened.on("pageerror", lambda error: watch.errors.append(str(error)))
    opened.on("console", watch.console)
    opened.on("request", lambda request: watch.urls.append(request.url))
    yield opened
    context.close()
    assert watch.dialogs == [], "a page opened a dialog"
    assert watch.errors == [], "a page raised a script error"
    assert watch.csp == [], "the CSP refused something the console needs"


def shot(page: Page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def ready(page: Page) -> None:
    """Wait until the page's script rendered it the first time."""
    expect(page.locator("body[data-ready]")).to_have_count(1)


def visit(page: Page, stack: LocalStack, path: str) -> None:
    page.goto(f"{stack.url}/console/{path}")
    ready(page)


def sign_in(page: Page, stack: LocalStack, secret: str, landing: str = "index.html") -> None:
    page.goto(f"{stack.url}/console/{landing}")
    expect(page).to_have_url(re.compile(r"/console/signin\.html\?next="))
    page.get_by_label("API token").fill(secret)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(rf"/console/{re.escape(landing)}$"))
    ready(page)


def create_task(admin: httpx.Client, **fields: Any) -> dict[str, Any]:
    made = admin.post("/v1/scheduled-tasks", json={"action": "echo", **fields})
    assert made.status_code == 201, made.text
    task: dict[str, Any] = made.json()
    return task


# -- the tests -----------------------------------------------------------------


def test_console_is_served_with_a_csp_without_unsafe_inline(stack: LocalStack) -> None:
    answer = httpx.get(f"{stack.url}/console/", follow_redirects=True)
    assert answer.status_code == 200
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert "frame-ancestors 'none'" in policy
    assert '<meta http-equiv="Content-Security-Policy"' in answer.text
    assert "<script>" not in answer.text and "style=" not in answer.text
    assert httpx.get(f"{stack.url}/health").json()["status"] == "ok"  # the API, as before


def test_sign_in_keeps_the_token_out_of_urls_and_sign_out_forgets_it(
    page: Page, stack: LocalStack, watch: Watch
) -> None:
    page.goto(f"{stack.url}/console/")
    expect(page).to_have_url(re.compile(r"/signin\.html"))
    page.get_by_label("API token").fill("tw_not-a-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#signin-token-error")).to_have_text(re.compile("does not know this token"))
    expect(page.get_by_label("API token")).to_have_attribute("aria-invalid", "true")
    shot(page, "signin")

    page.get_by_label("API token").fill(ADMIN_SECRET)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard", level=1)).to_be_visible()
    expect(page.locator("#who-name")).to_have_text("bootstrap admin")
    expect(page.locator("#tile-queued-value")).to_have_text(re.compile(r"^\d+$"))
    assert page.evaluate("sessionStorage.getItem('tickwork.token')") == ADMIN_SECRET
    assert page.evaluate("localStorage.length") == 0

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/signin\.html"))
    assert page.evaluate("sessionStorage.getItem('tickwork.token')") is None
    page.goto(f"{stack.url}/console/tasks.html")
    expect(page).to_have_url(re.compile(r"/signin\.html\?next=tasks\.html"))
    assert not [url for url in watch.urls if ADMIN_SECRET in url or "tw_" in url]


def test_a_task_created_through_the_api_appears_with_its_next_run(
    page: Page, stack: LocalStack, admin: httpx.Client
) -> None:
    task = create_task(
        admin,
        name="morning-report",
        schedule="0 9 * * MON-FRI",
        timezone="Europe/Amsterdam",
        group="reports",
    )
    sign_in(page, stack, ADMIN_SECRET, "tasks.html")
    row = page.locator("#tasks tr", has=page.get_by_role("link", name="morning-report"))
    expect(row).to_be_visible()
    next_run = row.locator(f'time[datetime="{task["next_run_at"]}"]')
    expect(next_run).to_be_visible()
    expect(row).to_contain_text(USER_ZONE)  # the user's zone …
    expect(row).to_contain_text("(Europe/Amsterdam)")  # … and the task's
    expect(row.get_by_role("switch", name="Enabled: morning-report")).to_be_checked()
    shot(page, "tasks")

    row.get_by_role("link", name="morning-report").click()
    expect(page.get_by_role("heading", name="morning-report", level=1)).to_be_visible()
    expect(page.locator("#schedule-description")).to_have_text(
        "At 09:00, Monday through Friday (Europe/Amsterdam)"
    )
    expect(page.locator("#upcoming li")).to_have_count(5)
    expect(page.locator(f'#upcoming time[datetime="{task["upcoming"][0]}"]')).to_be_visible()
    expect(page.get_by_role("button", name="Run now")).to_be_enabled()
    shot(page, "task")

    # Disabling from the detail page reaches the API.
    page.get_by_role("switch", name="Enabled").uncheck()
    expect(page.locator("#task-notice")).to_have_text(re.compile("Disabled"))
    assert admin.get(f"/v1/scheduled-tasks/{task['id']}").json()["enabled"] is False


def test_the_task_form_shows_the_api_error_at_its_field_and_a_good_task_lands(
    page: Page, stack: LocalStack
) -> None:
    sign_in(page, stack, ADMIN_SECRET, "task-form.html")
    page.get_by_label("Name", exact=True).fill("every-two-seconds")
    page.get_by_label("Action").fill("echo")
    page.get_by_label("Arguments (JSON object)").fill('{"hello": "console"}')
    schedule = page.get_by_label("Schedule", exact=True)
    schedule.fill("61 * * * *")
    page.get_by_role("button", name="Create task").click()
    error = page.locator("#task-form-schedule-error")
    expect(error).to_have_text("cron field 'minute' value 61 is out of range 0-59")
    expect(schedule).to_have_attribute("aria-invalid", "true")
    expect(page).to_have_url(re.compile(r"/task-form\.html$"))
    shot(page, "task-form-error")

    schedule.fill("*/2 * * * * *")
    expect(page.locator("#preview-description")).to_have_text("Every 2 seconds")
    expect(page.locator("#preview-times tbody tr")).to_have_count(5)
    expect(error).to_be_hidden()
    shot(page, "task-form")
    page.get_by_role("button", name="Create task").click()

    expect(page).to_have_url(re.compile(r"/task\.html\?id=tsk_"))
    expect(page.get_by_role("heading", name="every-two-seconds", level=1)).to_be_visible()
    first_complete = page.locator("#runs tbody.run", has=page.locator(".chip-complete")).first
    expect(first_complete).to_be_visible(timeout=RUN_WAIT_MS)
    run_id = first_complete.get_attribute("data-key")
    run = page.locator(f'#runs tbody.run[data-key="{run_id}"]')
    run.get_by_role("button", name="Show").click()
    details = run.locator(".run-details")
    expect(details.locator("pre").first).to_contain_text('"hello": "console"')
    expect(details.locator("pre.log")).to_contain_text("echo 1 argument(s)")
    # New runs arrive by themselves; the open run stays open.
    runs = page.locator("#runs tbody.run")
    expect(runs).not_to_have_count(runs.count(), timeout=RUN_WAIT_MS)
    expect(details.locator("pre.log")).to_be_visible()
    shot(page, "task-runs")


def test_an_approval_is_granted_in_the_ui_and_its_job_completes(
    page: Page, stack: LocalStack, admin: httpx.Client
) -> None:
    submitted = admin.post(
        "/v1/queue/jobs",
        json={"action": "echo", "requires_approval": True, "args": {"deploy": "v2"}},
    )
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    assert job["status"] == "awaiting_approval"

    sign_in(page, stack, ADMIN_SECRET, "approvals.html")
    card = page.locator("#pending li.card", has=page.get_by_role("link", name=job["id"]))
    expect(card).to_be_visible()
    expect(card.locator("pre")).to_contain_text('"deploy": "v2"')
    expect(card).to_contain_text("echo")
    comment = card.get_by_label("Comment (approve) or reason (reject)")
    comment.fill("ship it")
    # A request arriving meanwhile shows up without wiping what was typed.
    later = admin.post("/v1/queue/jobs", json={"action": "echo", "requires_approval": True})
    assert later.status_code == 202, later.text
    later_card = page.locator(
        "#pending li.card", has=page.get_by_role("link", name=later.json()["id"])
    )
    expect(later_card).to_be_visible()
    expect(comment).to_have_value("ship it")
    shot(page, "approvals")
    card.get_by_role("button", name="Approve").click()
    expect(page.locator("#approvals-notice")).to_contain_text(f"Approved: {job['id']}")
    expect(card).to_have_count(0)
    decided = page.locator("#decided tr", has=page.get_by_role("link", name=job["id"]))
    expect(decided).to_contain_text("bootstrap admin")
    expect(decided).to_contain_text("ship it")
    later_card.get_by_label("Comment (approve) or reason (reject)").fill("not today")
    later_card.get_by_role("button", name="Reject").click()
    expect(later_card).to_have_count(0)
    assert (
        admin.get(f"/v1/queue/jobs/{later.json()['id']}").json()["error"] == "rejected: not today"
    )

    page.get_by_role("link", name=job["id"]).first.click()
    expect(page).to_have_url(re.compile(r"/job\.html\?id="))
    expect(page.locator("#job-status .chip")).to_have_text("complete", timeout=RUN_WAIT_MS)
    expect(page.locator("#job-result")).to_contain_text('"deploy": "v2"')
    expect(page.locator("#attempts > li")).to_have_count(1)
    expect(page.locator("#attempts pre")).to_contain_text("echo 1 argument(s)")
    expect(page.locator("#timeline li.done")).to_have_count(4)
    shot(page, "job")


def test_the_job_page_shows_every_attempt_with_its_error_and_log(
    page: Page, stack: LocalStack, admin: httpx.Client, watch: Watch
) -> None:
    submitted = admin.post(
        "/v1/queue/jobs",
        json={"action": "fail", "args": {"message": "disk full"}, "max_tries": 2, "retry_delay": 0},
    )
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    sign_in(page, stack, ADMIN_SECRET, f"job.html?id={job_id}")
    expect(page.locator("#job-status .chip")).to_have_text("failed", timeout=RUN_WAIT_MS)
    attempts = page.locator("#attempts > li")
    expect(attempts).to_have_count(2)
    first, last = attempts.nth(0), attempts.nth(1)
    expect(first.locator("summary")).to_contain_text("Attempt 1")
    expect(first.locator("summary .chip")).to_have_text("failed")
    expect(first).to_contain_text("Error: disk full")
    # The last attempt is open with its log; an earlier one loads its log when opened.
    expect(last.locator("details")).to_have_attribute("open", "")
    expect(last.locator("pre")).to_contain_text("disk full")
    expect(first.locator("pre")).not_to_be_visible()
    first.locator("summary").click()
    expect(first.locator("pre")).to_contain_text("disk full")


def test_a_hostile_task_name_is_shown_as_text_and_runs_no_script(
    page: Page, stack: LocalStack, admin: httpx.Client, watch: Watch
) -> None:
    task = create_task(admin, name=HOSTILE, schedule="0 9 * * MON", description=HOSTILE)
    sign_in(page, stack, ADMIN_SECRET, "tasks.html")
    link = page.get_by_role("link", name=HOSTILE)
    expect(link).to_be_visible()
    expect(link).to_have_text(HOSTILE)
    assert page.locator("img").count() == 0
    visit(page, stack, "index.html")
    expect(page.locator("#next").get_by_role("link", name=HOSTILE)).to_be_visible()
    visit(page, stack, f"task.html?id={task['id']}")
    expect(page.get_by_role("heading", level=1)).to_have_text(HOSTILE)
    expect(page.locator("#definition")).to_contain_text(HOSTILE)
    assert page.locator("img").count() == 0
    assert page.title() == f"{HOSTILE} · Tickwork"
    assert watch.dialogs == []


def test_a_member_sees_no_admin_pages(
    page: Page, stack: LocalStack, member_secret: str, watch: Watch
) -> None:
    sign_in(page, stack, member_secret)
    expect(page.locator("#who-role")).to_have_text("member · default")
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link", name="Tasks")).to_be_visible()
    for admin_page in ("Observability", "Dead letters", "Tokens"):
        expect(navigation.get_by_role("link", name=admin_page)).to_have_count(0)
    expect(page.locator("#runs-scope")).to_contain_text("Stage-wide metrics are for admins")
    expect(page.locator("#runs-chart svg")).to_be_visible()
    shot(page, "dashboard-member")
    for admin_page in ("observability", "dead-letters", "tokens"):
        visit(page, stack, f"{admin_page}.html")
        expect(page.get_by_role("heading", name="Admins only")).to_be_visible()
    admin_calls = [u for u in watch.urls if "/v1/admin/" in u or "/observability/" in u]
    assert admin_calls == [], "a member's console called admin endpoints"


def test_admin_pages_and_the_narrow_layout(
    page: Page, stack: LocalStack, admin: httpx.Client
) -> None:
    done = admin.post("/v1/queue/jobs", json={"action": "echo", "correlation_id": "tour"})
    assert done.status_code == 202, done.text
    job_id = done.json()["id"]
    admin.get(f"/v1/queue/jobs/{job_id}/result", params={"wait": 20})
    sign_in(page, stack, ADMIN_SECRET)
    expect(page.locator("#runs-chart svg")).to_be_visible()
    shot(page, "dashboard")

    visit(page, stack, "jobs.html")
    page.get_by_label("Correlation id").fill("tour")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(re.compile(r"jobs\.html\?correlation_id=tour$"))
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    expect(page.locator("#jobs tbody tr")).to_contain_text(job_id)
    shot(page, "jobs")

    visit(page, stack, "observability.html")
    expect(page.locator("#totals .tile")).to_have_count(6)
    expect(page.locator("#per-action tbody tr", has_text="echo")).to_be_visible()
    expect(page.locator("#latency-chart svg")).to_be_visible()
    shot(page, "observability")

    visit(page, stack, "dead-letters.html")
    expect(page.locator("#dead-letters-empty")).to_be_visible()
    shot(page, "dead-letters")

    visit(page, stack, "tokens.html")
    page.get_by_label("Name").fill("console-ci")
    page.get_by_role("button", name="Issue").click()
    expect(page.locator("#secret-value")).to_have_value(re.compile(r"^tw_"))
    expect(page.locator("#tokens tbody tr", has_text="console-ci")).to_be_visible()
    shot(page, "tokens")

    page.set_viewport_size(NARROW)
    for name in ("index", "tasks", "approvals"):
        visit(page, stack, f"{name}.html")
        expect(page.locator(".loading:visible")).to_have_count(0)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"], f"{name}.html scrolls sideways at 400 px ({width} px)"
        shot(page, f"{name}-400")
