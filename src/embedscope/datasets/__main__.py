"""Write the demo's input files: `python -m embedscope.datasets FOLDER`."""

import sys
from pathlib import Path

from embedscope.datasets import write_demo_inputs, write_demo_tomograms, write_quality_micrographs
from embedscope.datasets.instance_masks import write_demo_subtomograms

folder = Path(sys.argv[1] if len(sys.argv) > 1 else "demo")
for path in write_demo_inputs(folder):
    print(f"wrote {path}")
print(f"wrote {write_demo_tomograms(folder / 'tomograms')['tomograms.txt']}")
micrographs = write_quality_micrographs(folder / "micrographs", per_class=10, side=1024, seed=0)
print(f"wrote {len(micrographs.names)} micrographs to {micrographs.micrographs[0].parent} (truth: {micrographs.truth})")
subtomograms = write_demo_subtomograms(folder / "subtomograms")
print(f"wrote tomograms with CryoSiam instance masks to {folder / 'subtomograms'} "
      f"(truth: {subtomograms['particles.csv']})")
