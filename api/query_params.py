"""Query strings hold only what the route reads, each single-value parameter once.

A query model with `extra="forbid"` (api.schemas) turns away unknown parameters on the
routes that take one, but a route without a query model took anything (?bogus=1), and
FastAPI keeps the last of a repeated single-value parameter (?k=2&k=3 searched with 3): a
typo or a client bug went unnoticed. `exact_query`, a dependency of every API route
(create_app), refuses both with the 422 of any other validation error (OpenAI's 400 on the
chat routes, through their route class). What a route reads comes from its declared
parameters, so a new parameter needs no list kept here.
"""

import types
from typing import Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from api.validation import given_more_than_once

_SEQUENCES = (list, set, frozenset, tuple)


def exact_query(request: Request) -> None:
    dependant = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    expected = query_parameters(dependant)
    problems = []
    for name in dict.fromkeys(request.query_params.keys()):
        values = request.query_params.getlist(name)
        if name not in expected:
            problems.append({"type": "extra_forbidden", "loc": ("query", name),
                             "msg": "Extra inputs are not permitted",
                             "input": values[0] if len(values) == 1 else values})  # fmt: skip
        elif len(values) > 1 and not expected[name]:
            problems.append(given_more_than_once("query", name, values))
    if problems:
        raise RequestValidationError(problems)


def query_parameters(dependant: Dependant) -> dict[str, bool]:
    """Each query parameter the route reads (its own and its dependencies'), and whether it
    takes several values (?topic=a&topic=b). A query model counts as its fields. Not
    cached: a few fields, microseconds next to the route's own work."""
    found: dict[str, bool] = {}
    pending = [dependant]
    while pending:
        current = pending.pop()
        pending.extend(current.dependencies)
        for field in current.query_params:
            model = _model(field.field_info.annotation)
            if model is None:
                found[field.alias] = _is_sequence(field.field_info.annotation)
                continue
            for name, info in model.model_fields.items():
                found[info.alias or name] = _is_sequence(info.annotation)
    return found


def _model(annotation: Any) -> type[BaseModel] | None:
    annotation = _without_none(annotation)
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation if is_model else None


def _is_sequence(annotation: Any) -> bool:
    return get_origin(_without_none(annotation)) in _SEQUENCES


def _without_none(annotation: Any) -> Any:
    """X from X | None (and Optional[X])."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation
