"""The Pythons the package claims are the ones CI tests: ``.ci/run`` runs the suite on each
"Programming Language :: Python :: 3.X" classifier, so those must run without a gap from the
``requires-python`` minimum, or a version pip installs on would go untested."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_the_classifiers_claim_every_version_from_the_minimum() -> None:
    text = (ROOT / "pyproject.toml").read_text()
    minimum = re.search(r'^requires-python = ">=3\.(\d+)"$', text, re.MULTILINE)
    assert minimum is not None
    minors = [int(m) for m in re.findall(r'"Programming Language :: Python :: 3\.(\d+)"', text)]
    assert minors == list(range(int(minimum.group(1)), int(minimum.group(1)) + len(minors)))
    assert len(minors) >= 4  # 3.10 to 3.13, the versions this project is tested on

