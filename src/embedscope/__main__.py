"""Run the command line as `python -m embedscope`."""

from embedscope.cli.main import run

run()
