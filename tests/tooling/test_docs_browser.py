"""/docs in a real headless browser: Debian's chromium driven by Playwright (never Playwright's own browser).

The served mock's page must list the seven operations, take a fixture token through Swagger UI's Authorize
dialog, and a "Try it out" -> Execute must reach this mock and show 200, which the mock's access log
confirms. No request may leave the mock's origin (the page works offline), and the page must run without
console errors (a CSP violation is one). A screenshot is written to the test's tmp dir and, when
DOCS_SCREENSHOT_DIR is set, there too (CI keeps it). DOCS_README_SCREENSHOT=docs/images/docs-page.png (a
path, relative to the checkout's root) also writes the README's picture of /docs there: the token panel and
an executed operation, in the viewport. Unset (the default), nothing in the checkout is written.

Without /usr/bin/chromium (or INSIGHTS_MOCK_CHROMIUM) the test skips, unless INSIGHTS_MOCK_REQUIRE_BROWSER=1
(CI), where it fails.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from mock_helpers import need_browser, NOW, PREFIX, SMALL, SPEC, TOKENS, operations, start, stop

ROOT = Path(__file__).resolve().parents[2]

# Debian's chromium by default; INSIGHTS_MOCK_CHROMIUM names another Chromium or Chrome binary.
CHROMIUM = os.environ.get("INSIGHTS_MOCK_CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags chromium phones home at start, and a closed network refuses it.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "mock-poweruser-token"
OTHER_TOKEN = "mock-auditor-token"
OPERATION = "getMostViewedDashboards"

pytestmark = [pytest.mark.live, pytest.mark.slow]


@pytest.fixture
def browser_context(tmp_path):
    need_browser(os.path.exists(CHROMIUM), f"{CHROMIUM} is missing")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:  # pragma: no cover - the test extra installs it
        need_browser(False, "playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 1100})
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def served():
    sizes = [f"--{key.lower().replace('_', '-')}={value}" for key, value in SMALL.items()]
    process, base = start(["--now", NOW, *sizes])
    served = {"base": base, "process": process}
    yield served
    if process.poll() is None:
        served["output"] = stop(process)


def _user_id(token: str) -> str:
    return next(entry["user"]["id"] for entry in TOKENS if entry["token"] == token)


def _execute(page, operation_id: str) -> None:
    block = page.locator(".opblock").filter(
        has=page.locator(".opblock-summary-operation-id", has_text=operation_id))
    if not block.locator(".opblock-body").count():
        block.locator(".opblock-summary-control").click()
    block.locator("button.try-out__btn").click()
    block.locator("button.execute").click()
    block.locator(".live-responses-table tr.response td.response-col_status").first.wait_for()


def _readme_screenshot(page, block, target: Path) -> None:
    """The README's picture: from the server and Authorize bar down to the executed operation and its 200
    (the page as a person sees it after step 2 of "A first session"), in 256 colours when Pillow is here
    (matplotlib, in the test extra, brings it) to keep the checkout small."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shot = target.with_name(target.stem + ".tmp.png")
    top = page.locator(".scheme-container").bounding_box()
    bottom = block.locator(".live-responses-table").first.bounding_box()
    scroll = page.evaluate("window.scrollY")
    y0 = top["y"] + scroll
    clip = {"x": 0, "y": y0, "width": page.viewport_size["width"],
            "height": min(bottom["y"] + scroll + bottom["height"] + 16 - y0, 1400)}
    page.screenshot(path=str(shot), full_page=True, clip=clip)
    try:
        from PIL import Image  # noqa: PLC0415
    except ImportError:  # pragma: no cover
        pass
    else:
        with Image.open(shot) as image:
            image.convert("RGB").quantize(256).save(shot, optimize=True)
    assert shot.stat().st_size > 10_000
    shot.replace(target)


def test_docs_page_try_it_out_with_a_fixture_token(browser_context, served, tmp_path):
    from playwright.sync_api import expect

    base = served["base"]
    requested, foreign, problems = [], [], []

    def route(route):
        url = route.request.url
        requested.append(url)
        if url == base or url.startswith(base + "/"):
            route.continue_()
        else:
            foreign.append(url)
            route.abort()

    browser_context.route("**/*", route)
    page = browser_context.new_page()
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))

    page.goto(base + "/docs")
    page.locator(".opblock").first.wait_for(timeout=30_000)

    # All seven operations, by operationId and summary, in the spec's order.
    expected_ids = [op_id for op_id, _, _ in operations()]
    assert len(expected_ids) == 7
    assert page.locator(".opblock-summary-operation-id").all_inner_texts() == expected_ids
    summaries = [op["summary"] for item in SPEC["paths"].values() for op in item.values()
                 if isinstance(op, dict) and "operationId" in op]
    assert page.locator(".opblock-summary-description").all_inner_texts() == summaries
    # The token panel names every fixture token.
    panel = page.locator("#mock-tokens").inner_text()
    assert all(entry["token"] in panel for entry in TOKENS)
    # The one server offered is this mock, not the spec's 127.0.0.1:4010.
    assert page.locator(".servers select option").all_inner_texts()[0].startswith(base)

    # Authorize through the dialog, as a person would.
    page.locator(".scheme-container button.authorize").click()
    page.locator("#auth-bearer-value").fill(TOKEN)
    page.locator(".auth-btn-wrapper button.authorize").click()
    # Swagger UI's authorized state (a generous timeout: CI machines are shared).
    expect(page.locator(".auth-container h6")).to_have_text("Authorized", timeout=20_000)
    page.locator(".auth-btn-wrapper button.btn-done").click()

    _execute(page, OPERATION)
    block = page.locator(".opblock").filter(has=page.locator(".opblock-summary-operation-id", has_text=OPERATION))
    assert block.locator(".live-responses-table tr.response td.response-col_status").first.inner_text().strip() == "200"
    assert block.locator(".request-url pre").inner_text().strip().startswith(base + "/api/")
    body = block.locator(".live-responses-table tr.response td.response-col_description pre").first.inner_text()
    assert json.loads(body)["message"] == "Successfully retrieved most viewed dashboards"

    shots = [tmp_path / "docs.png", tmp_path / "docs-try-it-out.png"]
    page.screenshot(path=str(shots[0]), full_page=True)
    block.screenshot(path=str(shots[1]))
    if os.environ.get("DOCS_SCREENSHOT_DIR"):
        target = Path(os.environ["DOCS_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, target / shot.name)
    assert all(shot.stat().st_size > 10_000 for shot in shots)
    if os.environ.get("DOCS_README_SCREENSHOT"):
        _readme_screenshot(page, block, ROOT / os.environ["DOCS_README_SCREENSHOT"])

    # persistAuthorization: after a reload the token is still applied, without the dialog.
    page.reload()
    page.locator(".opblock").first.wait_for(timeout=30_000)
    _execute(page, OPERATION)
    block = page.locator(".opblock").filter(has=page.locator(".opblock-summary-operation-id", has_text=OPERATION))
    assert block.locator(".live-responses-table tr.response td.response-col_status").first.inner_text().strip() == "200"

    # The panel's Use button switches the token: the auditor may not read dashboard views, as its row says.
    assert "403 on the others" in page.locator("#mock-tokens tr", has_text=OTHER_TOKEN).inner_text()
    page.locator(f'button[data-token="{OTHER_TOKEN}"]').click()
    block.locator("button.execute").click()
    expect(block.locator(".live-responses-table tr.response td.response-col_status").first).to_have_text(
        "403", timeout=20_000)
    page.close()

    assert not foreign, f"requests left the mock's origin {base}: {foreign}"
    assert any(url.startswith(base + "/docs/assets/") for url in requested)
    assert any(url.startswith(f"{base}{PREFIX}/dashboard/most-viewed") for url in requested)  # Execute's call
    # The one expected: chromium logs the deliberate 403 as a failed resource load.
    unexpected = [p for p in problems if "the server responded with a status of 403" not in p]
    assert not unexpected and len(problems) <= 1, f"the page logged errors: {problems}"

    out, err = stop(served["process"])
    calls = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    executed = [c for c in calls if c.get("operationId") == OPERATION]
    assert [(c["status"], c["userId"]) for c in executed] == [
        (200, _user_id(TOKEN)), (200, _user_id(TOKEN)), (403, _user_id(OTHER_TOKEN))], err[-3000:]


def test_docs_operator_panel_session_scenario_forced_code_and_journal(browser_context, served):
    """The operator panel: the session field sets the mock_session cookie, so Execute acts on that session
    (its journal gets the call; a reload keeps it); the scenario menu switches that session only; the forced
    code makes Try it out ask for a documented error; the journal button lists the session's requests."""
    import requests
    from playwright.sync_api import expect

    base = served["base"]
    page = browser_context.new_page()
    page.goto(base + "/docs")
    page.locator(".opblock").first.wait_for(timeout=30_000)
    expect(page.locator("#mock-session-current")).to_have_text("default")
    page.locator("#mock-session-name").fill("from-docs")
    page.locator("#mock-session-form button").click()
    expect(page.locator("#mock-session-current")).to_have_text("from-docs")
    page.locator(f'button[data-token="{TOKEN}"]').click()
    _execute(page, OPERATION)
    block = page.locator(".opblock").filter(has=page.locator(".opblock-summary-operation-id", has_text=OPERATION))
    assert block.locator(".live-responses-table tr.response td.response-col_status").first.inner_text().strip() == "200"
    journal = requests.get(base + "/__admin/sessions/from-docs/requests", timeout=10).json()
    assert journal["count"] == 1 and journal["entries"][0]["operationId"] == OPERATION
    default = requests.get(base + "/__admin/requests", timeout=10).json()
    assert not [e for e in default["entries"] if e.get("operationId") == OPERATION]
    # The scenario menu switches this session: `empty` has no views, the default session still has them.
    expect(page.locator("#mock-scenario option:checked")).to_have_text("default")
    page.locator("#mock-scenario").select_option("empty")
    expect(page.locator("#mock-status")).to_have_text("session from-docs switched to empty", timeout=20_000)
    block.locator("button.execute").click()
    body = block.locator(".live-responses-table tr.response td.response-col_description pre").first
    expect(body).to_contain_text('"data": []', timeout=20_000)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert requests.get(f"{base}{PREFIX}/dashboard/most-viewed", headers=headers, timeout=10).json()["data"]
    # A forced code: the documented 500, asked for with Prefer.
    page.locator("#mock-code").select_option("500")
    block.locator("button.execute").click()
    expect(block.locator(".live-responses-table tr.response td.response-col_status").first).to_have_text(
        "500", timeout=20_000)
    page.locator("#mock-code").select_option("")
    # The journal button: this session's three calls, newest first.
    page.locator("#mock-journal-show").click()
    expect(page.locator("#mock-status")).to_have_text("3 request(s) in the journal of session from-docs",
                                                      timeout=20_000)
    rows = page.locator("#mock-journal tr").all_inner_texts()
    assert len(rows) == 3 and rows[0].split("\t")[2] == "500" and all(OPERATION in row for row in rows)
    page.reload()
    expect(page.locator("#mock-session-current")).to_have_text("from-docs")
    expect(page.locator("#mock-scenario option:checked")).to_have_text("empty")
    page.locator("#mock-session-name").fill("")  # back to the default session
    page.locator("#mock-session-form button").click()
    expect(page.locator("#mock-session-current")).to_have_text("default")
    expect(page.locator("#mock-scenario option:checked")).to_have_text("default")
    page.close()
