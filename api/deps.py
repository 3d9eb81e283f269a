"""Typed dependencies: routes reach the components built at start-up through these."""

from typing import Annotated

from fastapi import Depends, Request

from rag.components import Components


def get_components(request: Request) -> Components:
    return request.app.state.components


ComponentsDep = Annotated[Components, Depends(get_components)]
