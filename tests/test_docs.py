"""The API documentation (mkdocs + mkdocstrings) builds with warnings as errors."""

from __future__ import annotations

import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SUBPACKAGES = (
    "io", "eval", "metrics", "retrieve", "topk", "fusion", "soft", "losses", "nn", "rerank",
    "quant", "plot", "config",
)  # fmt: skip


def test_mkdocs_build_strict(tmp_path):
    site = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # one page per subpackage, each documenting the functions and classes of its __all__
    # (constants without docstrings are not rendered)
    for sub in SUBPACKAGES:
        page = (site / "api" / sub / "index.html").read_text()
        module = __import__(f"jaxrank.{sub}", fromlist=["_"])
        public = getattr(module, "__all__", None) or [
            n
            for n, o in vars(module).items()
            if not n.startswith("_") and getattr(o, "__module__", None) == module.__name__
        ]
        names = [n for n in public if callable(getattr(module, n))]
        documented = [n for n in names if f'id="jaxrank.{sub}.{n}"' in page]
        assert names and len(documented) == len(names), (sub, sorted(set(names) - set(documented)))
    # "Example:" sections become code blocks (docs/griffe_examples.py)
    assert "&gt;&gt;&gt;" in (site / "api" / "soft" / "index.html").read_text()


def test_every_subpackage_has_an_api_page():
    pages = {p.stem for p in (ROOT / "docs" / "api").glob("*.md")}
    assert pages == set(SUBPACKAGES)
    subpackages = {
        p.parent.name if p.name == "__init__.py" else p.stem
        for p in (ROOT / "jaxrank").glob("*")
        if (p.is_dir() and (p / "__init__.py").exists() and p.name != "cli" and p.name != "data")
        or (p.suffix == ".py" and not p.name.startswith("_"))
    }
    assert subpackages == set(SUBPACKAGES), subpackages ^ set(SUBPACKAGES)
