"""Hypothesis profiles: ``ci`` (reproducible, more examples) when ``CI`` is set, else ``dev``;
``pytest --hypothesis-profile=explore`` for a long hunt with random seeds."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=200, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.register_profile("explore", deadline=None, max_examples=2500)
settings.load_profile("ci" if os.environ.get("CI") else "dev")
pytest_plugins = ["pytester"]
