"""Run the command line as `python -m embedscope`."""

from embedscope.cli.main import run

if __name__ == "__main__":  # worker processes re-import this module; they must not run the CLI again
    run()
