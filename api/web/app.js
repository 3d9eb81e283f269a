// cardrag's chat page: plain JavaScript, no build step, no third-party code.
// Answers stream from POST v1/ask (server-sent events). EventSource can only GET, so the
// stream is read with fetch() and parsed here. Server text is only ever inserted as text
// (textContent), never as HTML.

const HISTORY_TURNS = 6; // what the follow-up rewrite reads (rag.prompts.HISTORY_TURNS)
const MAX_TURN_CHARS = 4000; // /v1/ask's limit on one turn of history
const MAX_SEEN = 5000; // /v1/quiz/next's limit on `seen` (api.schemas.MAX_LISTED_CARDS)
const MARKER = /\[(\d+)\]/g;

const $ = (id) => document.getElementById(id);
const api = (path) => new URL(path, document.baseURI); // relative: works behind a path prefix

const state = {
  history: [], // earlier turns, oldest first: {role, content}
  busy: false,
};

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function cardLink(cardId, label) {
  const link = element("a", "cite", label);
  link.href = `#card=${encodeURIComponent(cardId)}`;
  link.dataset.cardId = cardId;
  return link;
}

// ---- banner and status -------------------------------------------------------------

function showBanner(kind, message) {
  const banner = $("banner");
  banner.className = `banner ${kind}`;
  banner.textContent = message;
  banner.hidden = false;
}

function hideBanner(kind) {
  const banner = $("banner");
  if (!kind || banner.classList.contains(kind)) banner.hidden = true;
}

async function checkHealth() {
  try {
    const response = await fetch(api("healthz"));
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const health = await response.json();
    $("status").textContent = `${health.cards} cards · ${health.llm.name}`;
    hideBanner("unreachable");
  } catch {
    $("status").textContent = "";
    showBanner("unreachable", "cardrag cannot be reached right now. Answers will come back when it is up again.");
  }
}

// ---- filters -----------------------------------------------------------------------

async function loadFilters() {
  const response = await fetch(api("v1/facets"));
  if (!response.ok) return;
  const facets = await response.json();
  for (const name of ["topic", "difficulty", "deck"]) {
    const select = $(`filter-${name}`);
    for (const { value, count } of facets[name]) {
      const option = element("option", "", `${value.replaceAll("-", " ")} (${count})`);
      option.value = value;
      select.append(option);
    }
  }
  $("deck-filter").hidden = facets.deck.length < 2;
}

function activeFilters() {
  const filters = {};
  for (const name of ["topic", "difficulty", "deck"]) {
    const value = $(`filter-${name}`).value;
    if (value) filters[name] = [value];
  }
  return filters;
}

// ---- asking and streaming ------------------------------------------------------------

// Yields {event, data} for each server-sent event of a fetch() response body.
async function* serverSentEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const blocks = buffer.split(/\r?\n\r?\n/);
    buffer = blocks.pop();
    for (const block of blocks) {
      let event = "message";
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
  }
}

// POST a JSON body: the answer stream and the quiz both send one.
async function postJson(path, body, headers = {}) {
  return fetch(api(path), {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (typeof body.message === "string") return body.message; // a 422, in words for people
    if (typeof body.detail === "string") return body.detail;
  } catch {
    // not JSON: fall through to the status line
  }
  return response.status >= 500
    ? "The service is unavailable right now. Please try again in a moment."
    : `The question was not accepted (HTTP ${response.status}).`;
}

function addTurn(role) {
  $("empty-hint")?.remove();
  const turn = element("li", `turn ${role}`);
  $("conversation").append(turn);
  return turn;
}

async function ask(question) {
  const userTurn = addTurn("user");
  userTurn.append(element("p", "text", question));
  const turn = addTurn("assistant");
  turn.dataset.state = "streaming";
  const text = element("div", "answer");
  text.append(element("span", "typing", "Looking through the cards…"));
  turn.append(text);
  turn.scrollIntoView({ block: "end" });

  const body = {
    question,
    stream: true,
    history: state.history.slice(-HISTORY_TURNS),
    ...activeFilters(),
  };
  let response;
  try {
    response = await postJson("v1/ask", body, { accept: "text/event-stream" });
  } catch {
    return showError(turn, "cardrag cannot be reached right now. Check the connection and try again.");
  }
  if (!response.ok) return showError(turn, await errorMessage(response));

  let streamed = "";
  try {
    for await (const { event, data } of serverSentEvents(response)) {
      if (event === "token") {
        streamed += data.text;
        text.textContent = streamed; // plain text while it streams; links once it is final
      } else if (event === "answer") {
        renderAnswer(turn, text, data);
        remember(question, data);
        return;
      } else if (event === "error") {
        return showError(turn, data.detail); // the answer failed after the stream started
      }
    }
  } catch {
    // the connection dropped mid-answer
  }
  showError(turn, "The answer was cut off. Please ask again.");
}

function remember(question, answer) {
  if (answer.refused || answer.degraded) return; // nothing a follow-up could build on
  state.history.push({ role: "user", content: question });
  state.history.push({ role: "assistant", content: answer.answer.slice(0, MAX_TURN_CHARS) });
}

function showError(turn, message) {
  turn.dataset.state = "error";
  turn.replaceChildren(element("p", "notice error", message));
}

// The final answer replaces the streamed text: grounding may have moved or dropped markers.
function renderAnswer(turn, text, answer) {
  hideBanner("degraded");
  const byNumber = new Map(answer.citations.map((c) => [c.n, c]));
  if (answer.refused) {
    turn.dataset.state = "refused";
    const filtered = Object.keys(activeFilters()).length > 0;
    text.replaceChildren(
      element("p", "notice not-covered",
        "The cards don't cover this question, so there is no answer to give from them."),
      element("p", "hint", filtered
        ? "Try clearing the topic or difficulty filter, or rephrase the question."
        : "Try rephrasing it, or ask about another part of the interview material."),
    );
    return;
  }
  if (answer.degraded) {
    turn.dataset.state = "degraded";
    showBanner("degraded", "The language model is unavailable right now: answers show the matching cards instead.");
    text.replaceChildren(element("p", "notice degraded",
      "No generated answer right now (the language model is unavailable). These cards match the question:"));
  } else {
    turn.dataset.state = "answered";
    text.replaceChildren(...withCitationLinks(answer.answer, byNumber));
    if (!answer.grounded) {
      turn.append(element("p", "hint", "Some sentences are not backed by a card and carry no marker."));
    }
  }
  if (answer.standalone_question) {
    turn.append(element("p", "hint", `Understood as: ${answer.standalone_question}`));
  }
  turn.append(sourceList(answer.citations));
}

function withCitationLinks(answerText, byNumber) {
  const nodes = [];
  let last = 0;
  for (const match of answerText.matchAll(MARKER)) {
    nodes.push(document.createTextNode(answerText.slice(last, match.index)));
    const citation = byNumber.get(Number(match[1]));
    nodes.push(citation ? cardLink(citation.card_id, match[0]) : document.createTextNode(match[0]));
    last = match.index + match[0].length;
  }
  nodes.push(document.createTextNode(answerText.slice(last)));
  return nodes;
}

function sourceList(citations) {
  const list = element("ol", "sources");
  list.setAttribute("aria-label", "Cited cards");
  for (const citation of citations) {
    const item = element("li");
    item.append(cardLink(citation.card_id, `[${citation.n}]`), " ", element("span", "", citation.question));
    list.append(item);
  }
  return list;
}

// ---- the card panel ------------------------------------------------------------------

async function openCard(cardId) {
  const panel = $("card-panel");
  panel.hidden = false;
  panel.dataset.cardId = cardId;
  $("card-question").textContent = "Loading…";
  for (const id of ["card-difficulty", "card-topic", "card-short", "card-long"]) $(id).textContent = "";
  $("related").replaceChildren();
  const [card, related] = await Promise.all([
    fetch(api(`v1/cards/${encodeURIComponent(cardId)}`)),
    fetch(api(`v1/cards/${encodeURIComponent(cardId)}/related?k=5`)),
  ]);
  if (panel.dataset.cardId !== cardId) return; // another card was opened meanwhile
  if (!card.ok) {
    $("card-question").textContent = card.status === 404 ? "This card is no longer in the index." : await errorMessage(card);
    return;
  }
  const data = await card.json();
  $("card-question").textContent = data.question;
  const badge = $("card-difficulty");
  badge.textContent = data.difficulty;
  badge.className = `badge ${data.difficulty}`;
  $("card-topic").textContent = data.topic.replaceAll("-", " ");
  $("card-short").textContent = data.short_answer;
  $("card-long").textContent = data.long_answer;
  if (related.ok) {
    for (const hit of (await related.json()).related) {
      const item = element("li");
      item.append(cardLink(hit.card_id, hit.question), " ", element("span", `badge ${hit.difficulty}`, hit.difficulty));
      $("related").append(item);
    }
  }
}

function closeCard() {
  $("card-panel").hidden = true;
  if (location.hash.startsWith("#card=")) history.replaceState(null, "", location.pathname + location.search);
}

function cardFromHash() {
  const match = location.hash.match(/^#card=(.+)$/);
  if (match) openCard(decodeURIComponent(match[1]));
}

// ---- quiz ------------------------------------------------------------------------------
// POST v1/quiz/next picks a card the session has not seen (the page keeps the seen ids;
// the server is stateless), POST v1/quiz/grade grades the learner's answer against it.

const quiz = { seen: [], card: null };

async function nextQuizQuestion() {
  $("quiz").hidden = false;
  $("quiz-result").replaceChildren();
  $("quiz-answer").value = "";
  let response;
  try {
    response = await postJson("v1/quiz/next", { ...activeFilters(), seen: quiz.seen.slice(-MAX_SEEN) });
  } catch {
    $("quiz-question").textContent = "cardrag cannot be reached right now.";
    return;
  }
  if (!response.ok) {
    $("quiz-question").textContent = await errorMessage(response);
    return;
  }
  const { card, remaining } = await response.json();
  quiz.card = card;
  $("quiz-form").hidden = !card;
  if (!card) {
    $("quiz-meta").textContent = "";
    $("quiz-question").textContent = quiz.seen.length
      ? "You have seen every card that matches these filters."
      : "No card matches these filters.";
    return;
  }
  quiz.seen.push(card.card_id);
  $("quiz-meta").textContent = `${card.topic.replaceAll("-", " ")} · ${card.difficulty} · ${remaining} more`;
  $("quiz-question").textContent = card.question;
  $("quiz-answer").focus();
}

async function gradeQuizAnswer(answer) {
  const result = $("quiz-result");
  result.replaceChildren(element("p", "typing", "Grading against the card…"));
  let response;
  try {
    response = await postJson("v1/quiz/grade", { card_id: quiz.card.card_id, answer });
  } catch {
    result.replaceChildren(element("p", "notice error", "cardrag cannot be reached right now."));
    return;
  }
  if (!response.ok) {
    result.replaceChildren(element("p", "notice error", await errorMessage(response)));
    return;
  }
  const grade = await response.json();
  const parts = [];
  if (grade.score === null) {
    parts.push(element("p", "notice degraded", grade.note || "The grader is unavailable: compare with the card yourself."));
  } else {
    parts.push(element("p", "score", `Score: ${Math.round(grade.score * 100)} %`));
  }
  for (const [title, points, className] of [["Right", grade.right, "right"], ["Missing", grade.missing, "missing"]]) {
    if (!points.length) continue;
    parts.push(element("h3", "", title));
    const list = element("ul", className);
    for (const point of points) list.append(element("li", "", point));
    parts.push(list);
  }
  const source = element("p", "sources");
  source.append("Graded against ", cardLink(grade.citation.card_id, grade.reference.question));
  parts.push(source);
  result.replaceChildren(...parts);
}

function stopQuiz() {
  $("quiz").hidden = true;
  quiz.card = null;
}

// ---- wiring --------------------------------------------------------------------------

function init() {
  if (new URLSearchParams(location.search).has("embed")) document.body.classList.add("embed");
  const form = $("ask-form");
  const input = $("question");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const question = input.value.trim();
    if (!question || state.busy) return;
    state.busy = true;
    $("ask-button").disabled = true;
    input.value = "";
    try {
      await ask(question);
    } finally {
      state.busy = false;
      $("ask-button").disabled = false;
      input.focus();
    }
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  $("new-chat").addEventListener("click", () => {
    state.history = [];
    $("conversation").replaceChildren();
    closeCard();
    input.focus();
  });
  $("close-card").addEventListener("click", closeCard);
  $("quiz-start").addEventListener("click", nextQuizQuestion);
  $("quiz-next").addEventListener("click", nextQuizQuestion);
  $("quiz-stop").addEventListener("click", stopQuiz);
  $("quiz-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const answer = $("quiz-answer").value.trim();
    if (!answer || !quiz.card) return;
    $("quiz-grade").disabled = true;
    try {
      await gradeQuizAnswer(answer);
    } finally {
      $("quiz-grade").disabled = false;
    }
  });
  window.addEventListener("hashchange", cardFromHash);
  cardFromHash();
  loadFilters();
  checkHealth();
  setInterval(checkHealth, 30000);
}

init();
