from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).parent)
if _HERE not in sys.path:  # for `import services` under any pytest import mode
    sys.path.insert(0, _HERE)
