"""A tiny progress bar on stderr, shown only when work lasts more than a moment.

jaxrank has no runtime dependency for progress reporting: long host-side loops
(chunked evaluation, indexing, training) wrap their iterable in :func:`progress`,
which stays silent for work shorter than ``delay`` seconds and when stderr is not
a terminal (unless ``JAXRANK_PROGRESS=1`` forces it; ``JAXRANK_PROGRESS=0``
silences it everywhere).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def _enabled() -> bool:
    flag = os.environ.get("JAXRANK_PROGRESS")
    if flag is not None:
        return flag not in ("0", "", "false", "no")
    return sys.stderr.isatty()


def progress(
    iterable: Iterable[T], *, total: int | None = None, desc: str = "", delay: float = 1.5
) -> Iterator[T]:
    """Yield from ``iterable``, drawing ``desc [#####.....] i/total`` on stderr.

    Nothing is drawn before ``delay`` seconds have passed, so short work stays quiet.
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    enabled = _enabled()
    start = time.perf_counter()
    last_draw = 0.0
    drawn = False
    i = 0
    for i, item in enumerate(iterable, 1):
        yield item
        if not enabled:
            continue
        now = time.perf_counter()
        if now - start >= delay and now - last_draw >= 0.2:
            _draw(desc, i, total, now - start)
            last_draw, drawn = now, True
    if drawn:
        _draw(desc, i, total, time.perf_counter() - start)
        sys.stderr.write("\n")
        sys.stderr.flush()


def _draw(desc: str, i: int, total: int | None, elapsed: float) -> None:
    if total:
        width = 30
        filled = int(width * i / total)
        bar = "#" * filled + "." * (width - filled)
        text = f"\r{desc} [{bar}] {i}/{total} {elapsed:5.1f}s"
    else:
        text = f"\r{desc} {i} {elapsed:5.1f}s"
    sys.stderr.write(text)
    sys.stderr.flush()
