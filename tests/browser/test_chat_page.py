"""The chat page in a real browser: Debian's chromium driven by Playwright, against a real
server (fake LLM, hashing embedder). `make browser` installs chromium; Playwright never
downloads a browser of its own here (executable_path points at Debian's)."""

import html
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from api.app import create_app
from rag.errors import LLMUnavailable
from rag.testing import FakeLLM
from tests.api.conftest import KEY
from tests.live import serve_in_thread

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]  # fmt: skip
QUESTION = "What is backpropagation?"
REPLY = ("Backpropagation applies the chain rule to compute gradients layer by layer [1]. "
         "It lets neural networks learn their weights [1].")  # fmt: skip
TIMEOUT_MS = 30_000


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing (make browser installs Debian's chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (it is in the dev extra)"
    return None


if (reason := _missing()) is not None:
    if os.environ.get("CI"):  # in CI a missing browser is a broken set-up, not a skip
        raise RuntimeError(reason)
    pytest.skip(reason, allow_module_level=True)

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

expect.set_options(timeout=TIMEOUT_MS)  # a shared 2-core machine can be slow


class SlowFakeLLM(FakeLLM):
    """The fake LLM, writing one word every 0.15 s, so the page has a stream to show."""

    def stream(self, messages, *, max_tokens, temperature, until=None, grammar=None, usage=None):
        for piece in super().stream(messages, max_tokens=max_tokens, temperature=temperature):
            time.sleep(0.15)
            yield piece


@pytest.fixture
def fake_llm() -> FakeLLM:
    return SlowFakeLLM()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    opened.console_errors = []  # type: ignore[attr-defined]
    opened.on("console", lambda m: m.type == "error" and opened.console_errors.append(m.text))
    opened.on("pageerror", lambda e: opened.console_errors.append(str(e)))
    yield opened
    context.close()


def ask(page: Page, question: str) -> None:
    page.fill("#question", question)
    page.press("#question", "Enter")


def last_answer(page: Page):
    return page.locator("li.assistant").last


def test_ask_stream_cite_and_open_related_cards(page, live_server, fake_llm, tmp_path):
    fake_llm.enqueue(REPLY)
    page.goto(live_server)
    expect(page.locator("#filter-topic option")).not_to_have_count(1)  # facets loaded
    expect(page.locator("#status")).to_contain_text("cards")
    ask(page, QUESTION)

    # The answer streams in: partial text while the turn is still streaming...
    streaming = page.locator('li.assistant[data-state="streaming"] .answer')
    expect(streaming).to_contain_text("Backpropagation applies")
    # ...then the final answer, with its [n] markers as links to the cards.
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-state", "answered")
    expect(answer.locator(".answer")).to_contain_text("chain rule")
    marker = answer.locator(".answer a.cite").first
    expect(marker).to_have_text("[1]")
    expect(answer.locator(".sources li")).to_contain_text([QUESTION])

    marker.click()
    panel = page.locator("#card-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#card-question")).to_have_text(QUESTION)
    expect(page.locator("#card-difficulty")).to_have_text("medium")
    expect(page.locator("#card-short")).to_contain_text("computes gradients layer by layer")
    expect(page.locator("#card-long")).not_to_be_empty()
    related = page.locator("#related a.cite")
    expect(related).to_have_count(5)
    page.screenshot(path=str(tmp_path / "chat-page.png"), full_page=True)

    first_related = related.first.inner_text()
    related.first.click()
    expect(page.locator("#card-question")).to_have_text(first_related)
    expect(page.locator("#related a.cite")).not_to_contain_text([first_related])
    page.click("#close-card")
    expect(panel).to_be_hidden()

    assert (tmp_path / "chat-page.png").stat().st_size > 10_000
    assert page.console_errors == []


def test_questions_the_cards_do_not_cover_say_so(page, live_server, fake_llm):
    page.goto(live_server)
    ask(page, "xylophone quartz zebra")
    expect(last_answer(page)).to_have_attribute("data-state", "refused")
    expect(page.locator(".notice.not-covered")).to_contain_text("don't cover this question")
    assert fake_llm.prompts == []


def test_a_degraded_service_is_announced_and_shows_the_cards(page, live_server, fake_llm):
    fake_llm.enqueue(LLMUnavailable("backend down"))
    page.goto(live_server)
    ask(page, QUESTION)
    answer = last_answer(page)
    expect(answer).to_have_attribute("data-state", "degraded")
    expect(page.locator("#banner.degraded")).to_contain_text("language model is unavailable")
    expect(answer.locator(".sources a.cite").first).to_have_text("[1]")
    answer.locator(".sources a.cite").first.click()
    expect(page.locator("#card-question")).to_have_text(QUESTION)


def test_an_unreachable_service_is_a_clear_message(page, live_server):
    page.goto(live_server)
    page.route("**/v1/ask", lambda route: route.abort())
    ask(page, QUESTION)
    expect(last_answer(page)).to_have_attribute("data-state", "error")
    expect(last_answer(page)).to_contain_text("cannot be reached")


def test_a_refused_question_says_why_in_words(page, live_server):
    # The textarea's maxlength stops typing at 1,000 characters; a script can still send more.
    page.goto(live_server)
    page.evaluate("document.querySelector('#question').value = 'x'.repeat(1001)")
    page.press("#question", "Enter")
    expect(last_answer(page)).to_have_attribute("data-state", "error")
    expect(last_answer(page)).to_have_text("question: must be at most 1,000 characters")


def test_filters_are_sent_with_the_question(page, live_server):
    page.goto(live_server)
    expect(page.locator("#filter-difficulty option")).to_have_count(4)
    page.select_option("#filter-difficulty", "easy")
    page.select_option("#filter-topic", "regularization")
    with page.expect_request("**/v1/ask") as sent:
        ask(page, "What does dropout do?")
    body = sent.value.post_data_json
    assert body["difficulty"] == ["easy"] and body["topic"] == ["regularization"]
    expect(last_answer(page)).not_to_have_attribute("data-state", "streaming")


def test_follow_ups_carry_the_conversation(page, live_server, fake_llm):
    page.goto(live_server)
    ask(page, "What does dropout do during training?")
    expect(last_answer(page)).to_have_attribute("data-state", "answered")
    with page.expect_request("**/v1/ask") as sent:
        ask(page, "and at inference time?")
    history = sent.value.post_data_json["history"]
    assert [turn["role"] for turn in history] == ["user", "assistant"]
    expect(last_answer(page)).to_contain_text("Understood as:")


@pytest.fixture
def other_site() -> Iterator[str]:
    """Another site (another origin: its own port) whose page shows cardrag in an iframe.
    A real loopback server, not a Playwright route: Chromium does not let a page from a
    made-up public origin frame a loopback address at all, whatever the CSP says."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    def notes(request):
        src = html.escape(request.query_params["cardrag"] + "/?embed=1")
        return HTMLResponse(
            '<html><head><link rel="icon" href="data:,"></head><body><h1>Team wiki</h1>'
            f'<iframe title="cardrag" src="{src}" width="700" height="600"></iframe></body></html>'
        )

    with serve_in_thread(Starlette(routes=[Route("/notes", notes)])) as base_url:
        yield base_url


@pytest.fixture
def framable_server(settings, components, other_site) -> Iterator[str]:
    server = settings.server.model_copy(update={"frame_ancestors": ["'self'", other_site]})
    with serve_in_thread(create_app(settings.model_copy(update={"server": server}),
                                    components)) as base_url:  # fmt: skip
        yield base_url


def test_an_allowed_site_embeds_the_page(page, framable_server, other_site, fake_llm):
    fake_llm.enqueue(REPLY)
    page.goto(f"{other_site}/notes?cardrag={framable_server}")
    frame = page.frame_locator("iframe")
    expect(frame.locator("body.embed")).to_be_attached()
    frame.locator("#question").fill(QUESTION)
    frame.locator("#question").press("Enter")
    expect(frame.locator("li.assistant")).to_have_attribute("data-state", "answered")
    frame.locator(".answer a.cite").first.click()
    expect(frame.locator("#card-question")).to_have_text(QUESTION)
    assert page.console_errors == []


def test_other_sites_cannot_frame_the_page_by_default(page, live_server, other_site):
    with page.expect_event("requestfailed", lambda r: r.url.startswith(live_server)):
        page.goto(f"{other_site}/notes?cardrag={live_server}")
    expect(page.frame_locator("iframe").locator("#question")).to_have_count(0)
    assert any("frame-ancestors 'self'" in error for error in page.console_errors)


def test_quiz_asks_a_card_grades_the_answer_and_cites_the_card(page, live_server, fake_llm,
                                                               components):
    page.goto(live_server)
    expect(page.locator("#filter-topic option")).not_to_have_count(1)  # facets loaded
    page.click("#quiz-start")
    question = page.locator("#quiz-question")
    expect(question).not_to_be_empty()
    expect(page.locator("#quiz-meta")).to_contain_text("more")
    asked = question.inner_text()
    # A point counts as right only if the card says it too (rag.quiz.verified_grade).
    card = next(c for c in components.store.all_cards() if c.question == asked)
    point = card.short_answer.rstrip(".")
    fake_llm.enqueue(json.dumps({"score": 0.8, "right": [point], "missing": ["the learning rate"]}))
    page.fill("#quiz-answer", f"I think {point}.")
    page.click("#quiz-grade")
    result = page.locator("#quiz-result")
    expect(result.locator(".score")).to_contain_text("%")
    expect(result.locator("ul.right li")).to_contain_text([point])
    expect(result.locator("ul.missing li")).to_contain_text(["the learning rate"])
    source = result.locator("a.cite")
    expect(source).to_have_text(asked)
    source.click()
    expect(page.locator("#card-question")).to_have_text(asked)

    with page.expect_request("**/v1/quiz/next") as sent:
        page.click("#quiz-next")
    assert len(sent.value.post_data_json["seen"]) == 1  # the card just asked is not asked again
    expect(question).not_to_have_text(asked)
    page.click("#quiz-stop")
    expect(page.locator("#quiz")).to_be_hidden()
    assert page.console_errors == []


def test_the_docs_page_works_offline_and_tries_a_working_example(page, live_server, fake_llm):
    # Swagger UI comes from fastapi-offline's wheel; a request for any other host fails here.
    outside = []
    page.route("**/*", lambda route: (outside.append(route.request.url) or route.abort())
               if not route.request.url.startswith(live_server) else route.continue_())
    fake_llm.enqueue(REPLY)
    page.goto(f"{live_server}/docs")
    operation = page.locator(".opblock-post").filter(has_text="/v1/ask").first
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    body = operation.locator("textarea.body-param__text")
    expect(body).to_contain_text("LayerNorm")  # the request's example, not pattern noise
    operation.locator(".execute").click()
    status = operation.locator(".live-responses-table tr.response .response-col_status")
    expect(status.first).to_have_text("200")
    assert outside == []


@pytest.fixture
def keyed_server(settings, components) -> Iterator[str]:
    keyed = settings.model_copy(update={"api_keys": [SecretStr(KEY)]})
    with serve_in_thread(create_app(keyed, components)) as base_url:
        yield base_url


def test_swagger_authorize_sends_the_key(page, keyed_server, fake_llm):
    # With keys set /docs needs one too: a proxy (or a header extension) adds it to the page,
    # its files and the schema, as a deployment that shows the docs would. The API calls of
    # "Try it out" get none from it, so only Authorize can make them pass.
    def docs_with_key(route):
        if route.request.url.startswith(f"{keyed_server}/v1/"):
            return route.continue_()
        return route.continue_(headers={**route.request.headers, "x-api-key": KEY})

    page.route(f"{keyed_server}/**", docs_with_key)
    page.goto(f"{keyed_server}/docs")
    operation = page.locator(".opblock-get").filter(has_text="/v1/cards/{card_id}").first
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    operation.locator("input[placeholder='card_id']").fill("dropout")
    status = operation.locator(".live-responses-table tr.response .response-col_status")
    operation.locator(".execute").click()
    expect(status.first).to_have_text("401")

    page.locator(".auth-wrapper .authorize").click()  # the Authorize button
    dialog = page.locator(".dialog-ux .modal-ux")
    bearer = dialog.locator(".auth-container").filter(has_text="bearerKey")
    bearer.locator("input").fill(KEY)
    bearer.locator("button.authorize").click()
    dialog.locator("button.close-modal").click()
    operation.locator(".btn-clear").click()
    operation.locator(".execute").click()
    expect(status.first).to_have_text("200")
    assert all("401" in error for error in page.console_errors)  # only the refused call
