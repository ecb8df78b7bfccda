"""The command line: thin Typer faces over the pipeline steps, one function per command and no logic.

`main.py` holds embedscope's own commands; each replaced tool has a module mapping its flags (`milopyp.py`).
"""
