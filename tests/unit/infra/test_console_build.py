"""The console's build: every page carries the CSP, runs no inline code, and
the task form is generated from `TaskSpec`."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from chalicelib.tasks.model import TaskSpec
from infra.console_build import PAGES, build, content_security_policy, task_form_sections

API = "https://abc123.execute-api.eu-west-1.amazonaws.com/api"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("console")
    build(out, api_base=API + "/")
    return out


def test_every_page_is_built_with_its_script_and_the_csp(site: Path) -> None:
    policy = content_security_policy(API)
    for page in PAGES:
        html = (site / page.output).read_text()
        csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
        assert csp is not None, page.output
        assert csp.group(1).replace("&#39;", "'") == policy
        assert f'<script type="module" src="static/js/pages/{page.script}.js">' in html
        assert (site / "static" / "js" / "pages" / f"{page.script}.js").is_file()


def test_the_csp_allows_files_and_the_api_only(site: Path) -> None:
    policy = content_security_policy(API)
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "connect-src 'self' https://abc123.execute-api.eu-west-1.amazonaws.com;" in policy
    assert "connect-src 'self';" in content_security_policy("")


def test_no_inline_scripts_styles_or_handlers_anywhere(site: Path) -> None:
    for path in site.rglob("*.html"):
        html = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path.name
        assert "<style" not in html and not re.search(r"\sstyle=", html), path.name
        assert not re.search(r"\son[a-z]+=", html), path.name
    for path in (site / "static").rglob("*.js"):
        code = path.read_text()
        assert "innerHTML" not in code and "outerHTML" not in code, path.name
        assert "insertAdjacentHTML" not in code and "document.write" not in code, path.name
        assert "eval(" not in code, path.name


def test_config_names_the_api(site: Path) -> None:
    config = (site / "config.js").read_text()
    assert f'{{"apiBase": "{API}"}}' in config


def test_an_api_base_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="absolute"):
        content_security_policy("api.example.com/v1")


def test_the_task_form_has_every_field_of_the_spec() -> None:
    fields = {f.name: f for _, group, _ in task_form_sections() for f in group}
    assert set(fields) == set(TaskSpec.model_fields)
    assert fields["on_overlap"].kind == "select"
    assert fields["on_overlap"].options == ("queue", "buffer_one", "skip", "terminate", "allow")
    assert fields["parallelism"].minimum == 1 and fields["parallelism"].maximum == 1000
    assert fields["timeout"].default == 300 and fields["timezone"].default == "UTC"
    assert fields["api_trigger"].kind == "checkbox" and fields["api_trigger"].default is True
