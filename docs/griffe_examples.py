"""Griffe extension used by mkdocs.yml (docstring fix-ups for the static analysis).

* jaxrank's docstrings title their doctest sections ``Example:`` (as optax does);
  griffe's Google parser knows only ``Examples:`` as the section whose ``>>>`` lines
  become code blocks, and would otherwise render them as Markdown text.
* A few functions get their docstring at import time (``f.__doc__ = ...``, e.g. the
  pairwise losses built from one template); static analysis sees none, so it is read
  from the imported function.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"(?m)^(\s*)Example:\s*$")


class ExampleSections(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is None and obj.is_function and obj.parent is not None:
            try:
                runtime = getattr(importlib.import_module(obj.parent.path), obj.name)
            except (ImportError, AttributeError):
                runtime = None
            doc = inspect.getdoc(runtime) if runtime is not None else None
            if doc:
                obj.docstring = griffe.Docstring(doc, parent=obj)
        if obj.docstring is not None:
            obj.docstring.value = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
