import subprocess
import sys

import jaxrank
from jaxrank.cli import main


def test_version_is_a_string():
    assert isinstance(jaxrank.__version__, str) and jaxrank.__version__


def test_cli_help_exits_zero(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "jaxrank" in capsys.readouterr().out


def test_cli_entry_point_runs():
    out = subprocess.run(
        [sys.executable, "-m", "jaxrank", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "jaxrank" in out.stdout
