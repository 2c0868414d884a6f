#!/usr/bin/env bash
# Everything the project checks, in the active environment (the README's test command; CI runs it
# too): the 9P peers installed when missing, types (the library, the typing tests, the examples, the fuzzer),
# lint, and the whole test suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tests/install-peers.sh
python -m mypy --strict jetwire tests/typing examples fuzz
python -m ruff check .
python -m pytest -q "$@"
