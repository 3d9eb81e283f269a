"""Typed dependencies: routes reach the components built at start-up through these."""

from typing import Annotated

from fastapi import Depends, Request

from api.metrics import Metrics
from rag.components import Components


def get_components(request: Request) -> Components:
    return request.app.state.components


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


ComponentsDep = Annotated[Components, Depends(get_components)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
