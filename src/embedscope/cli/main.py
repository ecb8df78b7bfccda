"""embedscope's own commands. Each function maps options onto one pipeline step and prints its result.

No logic lives here: checks, reading and writing are in `embedscope.pipeline`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from embedscope.cli.info_view import render_description
from embedscope.cli.runner import run_app, session

app = typer.Typer(
    name="embedscope",
    help="Embedding maps of images, micrographs, tomograms, text and existing vectors.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
stdout = Console()


def _version(value: bool) -> None:
    if value:
        from embedscope import __version__

        print(f"embedscope {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    debug: Annotated[bool, typer.Option("--debug", help="Show the full traceback of errors.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars or notes.")] = False,
    version: Annotated[
        bool | None, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """embedscope: turn vectors, images, micrographs and tomograms into maps you can explore.

    Flags --debug and --quiet may also be given after the command.
    """
    session.debug = debug
    session.quiet = quiet


@app.command("import")
def import_(
    inputs: Annotated[list[Path], typer.Argument(help="Vector files: .npy .npz .pt/.pth .parquet .csv/.tsv .h5")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The Atlas to write (a folder).")],
    key: Annotated[str | None, typer.Option(help="Array or dataset inside .npz / .pt / .h5 files.")] = None,
    transpose: Annotated[bool, typer.Option(help="The stored array is (dim, n), as CryoSiam's embeds.h5.")] = False,
    id_column: Annotated[str | None, typer.Option(help="Column (or npz/h5 array) holding the item ids.")] = None,
    vector_column: Annotated[
        str | None, typer.Option(help="List column holding the vectors, or a pattern like 'dim_*'.")
    ] = None,
    ids: Annotated[Path | None, typer.Option(help="File of ids, one per line, in input order.")] = None,
    meta: Annotated[Path | None, typer.Option(help="Metadata table (.csv/.tsv/.parquet) joined by id.")] = None,
    on: Annotated[str | None, typer.Option(help="Column of --meta that holds the item ids.")] = None,
    frame: Annotated[
        list[str] | None, typer.Option(help="Tag each input as a frame (snapshot); once per input.")
    ] = None,
    group: Annotated[list[str] | None, typer.Option(help="Tag each input with a group; once per input.")] = None,
    metric: Annotated[str | None, typer.Option(help="The distance the vectors are for: cosine or euclidean.")] = None,
    append: Annotated[bool, typer.Option("--append", help="Add to an existing Atlas.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing Atlas (atomically).")] = False,
) -> None:
    """Import vectors that already exist into an Atlas (new, --append, or --force to replace)."""
    from embedscope.pipeline import import_vectors

    report = import_vectors(
        inputs, output, key=key, transpose=transpose, id_column=id_column, vector_column=vector_column,
        ids_file=ids, meta=meta, on=on, frames=frame or (), groups=group or (), metric=metric,
        append=append, replace=force, reporter=session.reporter(), command=session.command,
    )
    if report.unmatched_ids and not session.quiet:
        examples = ", ".join(repr(example) for example in report.unmatched_examples)
        typer.echo(f"note: {report.unmatched_ids} item(s) had no row in {meta} (e.g. {examples})", err=True)
    if report.unused_metadata_rows and not session.quiet:
        typer.echo(f"note: {report.unused_metadata_rows} row(s) of {meta} matched no item", err=True)
    typer.echo(f"imported {report.added:,} vectors (dim {report.dim}) into {report.atlas}: {report.total:,} items")


@app.command()
def info(
    atlas: Annotated[Path, typer.Argument(help="The Atlas folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Show what an Atlas holds: items, dim, columns, layers, provenance, size on disk."""
    from embedscope.atlas import Atlas
    from embedscope.pipeline import describe

    description = describe(Atlas.open(atlas))
    if as_json:
        typer.echo(json.dumps(description, indent=2))
    else:
        render_description(description, stdout)


def run() -> None:
    """Entry point of the `embedscope` console script."""
    run_app(app)
