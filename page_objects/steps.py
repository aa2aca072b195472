"""One decorator that turns page-object intents into report steps (Allure) and trace groups (Playwright)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import PurePath
from typing import Any, TypeVar

try:
    import allure
except ImportError:  # the page objects work without the report plugin
    allure = None

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def _trace_group(owner: object, title: str) -> Iterator[None]:
    page = getattr(owner, "page", None)
    tracing = page.context.tracing if page is not None else None
    if tracing is None:
        yield
        return
    tracing.group(title)
    try:
        yield
    finally:
        tracing.group_end()


def _shown(value: Any) -> Any:
    """Paths read as their file names in a step title; a tuple of them as a list of names."""
    if isinstance(value, PurePath):
        return value.name
    if isinstance(value, tuple) and value and all(isinstance(item, PurePath) for item in value):
        return ", ".join(item.name for item in value)
    return value


def step(title: str) -> Callable[[F], F]:
    """``@step("Upload {path} with the file picker")``: the title is formatted with the call's arguments."""

    def decorate(func: F) -> F:
        signature = inspect.signature(func)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            text = title.format(**{name: _shown(value) for name, value in bound.arguments.items()})
            with ExitStack() as stack:
                if allure is not None:
                    stack.enter_context(allure.step(text))
                if args:
                    stack.enter_context(_trace_group(args[0], text))
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
