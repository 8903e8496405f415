"""AF_XDP tests: make tests/netns.py and tests/afxdp/frames.py importable (importlib mode)."""
import sys
from pathlib import Path

for p in (Path(__file__).parent, Path(__file__).parents[1]):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))
