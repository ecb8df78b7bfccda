"""The command line: thin Typer faces over the pipeline steps, one function per command."""
