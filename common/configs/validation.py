"""Turn pydantic validation failures into one-line errors that IT staff can act on."""

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from common.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)


def describe_validation_error(error: ValidationError, source: str) -> str:
    """One line per problem: where it came from, the field, the bad value, what is allowed."""
    problems = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(whole config)"
        if item["type"] == "extra_forbidden":
            problems.append(f"unknown field '{field}' (check the spelling)")
            continue
        value = item.get("input")
        shown = repr(value) if not isinstance(value, Mapping) else "{...}"
        problems.append(f"field '{field}' = {shown}: {item['msg']}")
    return f"{source}: " + "; ".join(problems)


def parse_config(model: type[ModelT], data: Mapping[str, Any], source: str) -> ModelT:
    """Validate ``data`` into ``model`` or raise :class:`ConfigError` naming ``source``."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as error:
        raise ConfigError(describe_validation_error(error, source)) from None
