"""FPGA tests: make fpga_helpers importable (pytest runs in importlib mode)."""
import sys
from pathlib import Path

_here = str(Path(__file__).parent)
if _here not in sys.path:
    sys.path.insert(0, _here)
