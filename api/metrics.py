"""Prometheus metrics at /metrics: requests and latency per route, answer stage timings.

prometheus-fastapi-instrumentator counts requests and times them per route template and
status; two histograms add what happens inside an answer (retrieval, generation), recorded
here in the API layer from the timings rag/ reports, so rag/ stays framework-free. Every app
gets its own registry: apps built side by side (tests) must not share or clash.
"""

from dataclasses import dataclass

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_fastapi_instrumentator import Instrumentator

from rag.answer import Answer

RETRIEVAL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
GENERATION_BUCKETS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0, 120.0)


# prometheus-fastapi-instrumentator 8.1 labels a request that the router would only
# redirect to add or drop a trailing slash with its raw path ("/v1/cards/x1/"), so each such
# URL, even one answered 401 before any redirect, became a series of its own: /metrics and
# the server's memory grew with every distinct URL a client sent. Those are not served
# requests; they are left out of the request metrics.
_REDIRECTED_OR_REFUSED_SLASH = r"^/.+/$"


@dataclass
class Metrics:
    retrieval: Histogram
    generation: Histogram
    answers: Counter

    def observe_retrieval(self, operation: str, seconds: float) -> None:
        self.retrieval.labels(operation=operation).observe(seconds)

    def observe_answer(self, answer: Answer, operation: str = "ask") -> None:
        """Count the answer by outcome and record its stage timings (milliseconds);
        `operation` tells /v1/ask ("ask") and the OpenAI chat API ("chat") apart. A degraded
        answer is still a 200, so without its count an LLM outage showed nowhere."""
        self.answers.labels(operation=operation, outcome=_outcome(answer)).inc()
        timings_ms = answer.timings
        if "retrieve_ms" in timings_ms:
            self.observe_retrieval(operation, timings_ms["retrieve_ms"] / 1000)
        for stage in ("rewrite", "expand", "generate"):  # the LLM calls an answer can make
            if f"{stage}_ms" in timings_ms:
                self.generation.labels(stage=stage).observe(timings_ms[f"{stage}_ms"] / 1000)


def install_metrics(app: FastAPI) -> None:
    """/metrics for this app, and app.state.metrics for the routes' own histograms."""
    registry = CollectorRegistry()
    Instrumentator(
        registry=registry,
        should_group_status_codes=False,  # 401 and 429 are worth telling apart from 200
        excluded_handlers=["/metrics", _REDIRECTED_OR_REFUSED_SLASH],
    ).instrument(app).expose(app, endpoint="/metrics", include_in_schema=False)
    metrics = Metrics(
        retrieval=Histogram(
            "cardrag_retrieval_seconds",
            "Time to retrieve cards, by operation (search, ask or chat).",
            ["operation"],
            buckets=RETRIEVAL_BUCKETS,
            registry=registry,
        ),
        generation=Histogram(
            "cardrag_generation_seconds",
            "Time the LLM took, by stage (generate: the answer; rewrite: a follow-up).",
            ["stage"],
            buckets=GENERATION_BUCKETS,
            registry=registry,
        ),
        answers=Counter(
            "cardrag_answers",
            "Answers by operation (ask or chat) and outcome: answered, refused (the cards do "
            "not cover the question) or degraded (the LLM failed; the cards are the answer).",
            ["operation", "outcome"],
            registry=registry,
        ),
    )
    app.state.metrics = metrics


def _outcome(answer: Answer) -> str:
    if answer.degraded:
        return "degraded"
    return "refused" if answer.refused else "answered"
