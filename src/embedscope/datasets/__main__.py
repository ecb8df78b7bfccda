"""Write the demo's input files: `python -m embedscope.datasets FOLDER`."""

import sys
from pathlib import Path

from embedscope.datasets import write_demo_inputs

for path in write_demo_inputs(Path(sys.argv[1] if len(sys.argv) > 1 else "demo")):
    print(f"wrote {path}")
