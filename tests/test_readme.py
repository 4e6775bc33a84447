"""The README's quickstart block runs as written and prints what it promises."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _quickstart() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Quickstart", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README.md: no ```python block after '## Quickstart'"
    return match.group(1)


def test_readme_starts_with_the_two_commands_and_a_short_quickstart():
    text = (ROOT / "README.md").read_text()
    headings = re.findall(r"(?m)^## .*$", text)
    assert headings[:2] == ["## Two commands", "## Quickstart"]
    assert "make demo" in text.split("## Quickstart")[0]
    assert "make test" in text.split("## Quickstart")[0]
    assert len(_quickstart().strip().splitlines()) <= 35


def test_readme_quickstart_runs():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(_quickstart(), "README.md:quickstart", "exec"), {"__name__": "__readme__"})
    printed = out.getvalue()
    # numbers: the demo runs' trec_eval values (jaxrank.eval.evaluate, cross-checked with
    # pytrec_eval in tests/test_interop.py); nDCG@3 row 2 by hand: ranking labels
    # (1, 0, 2) -> DCG = 1 + 2/log2(4) = 2, ideal (2, 1, 0) -> 2 + 1/log2(3) = 2.6309
    assert "'ndcg_cut_10': 0.8951" in printed
    assert "| ndcg_cut_10 | hybrid | 0.8951 | +0.3268 |" in printed
    assert "nDCG@3: [1.         0.76018" in printed
    assert "soft ranks: [[1. 3. 2. 0.]" in printed
