"""`semsearch watch`: index folders, then keep the index current as files change."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from semsearch.cli.common import (
    SETTING_OPTIONS,
    check_walk_options,
    display_path,
    find_index,
    gather,
    host_option,
    index_option,
    interruptible,
    keep_alive_option,
    open_index,
    timeout_option,
    walk_options,
)
from semsearch.options import DEFAULT_DEBOUNCE_MS

if TYPE_CHECKING:
    from semsearch.watch import WatchBatch


@click.command("watch", short_help="Index folders, then keep the index current as files change.")
@gather("settings", SETTING_OPTIONS)
@click.argument("paths", nargs=-1, type=click.Path(exists=True, path_type=Path))
@index_option
@click.option("-m", "--model", default=None,
              help="Embedding model for a new index (as for `semsearch index`) [default: qwen3-embedding:0.6b].")
@walk_options
@click.option("--debounce", "debounce_ms", type=click.IntRange(min=10, max=60_000), default=DEFAULT_DEBOUNCE_MS,
              show_default=True, metavar="MS",
              help="Quiet time that ends a batch of changes; a burst of saves becomes one batch.")
@host_option
@timeout_option
@keep_alive_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per batch (JSON lines).")
def watch_command(paths, index_dir, include, exclude, no_ignore, debounce_ms, as_json, settings) -> None:
    """Index PATHS, then follow file-system events and apply creates, edits, deletes and renames
    in debounced batches until Ctrl-C. PATHS are remembered with their options, as `index` does;
    with no PATHS, every folder the index remembers is watched, each with its own options.

    Prints one line per batch that changed the index: `+added ~updated -removed files, N chunks
    embedded, seconds`. A renamed file keeps its vectors (nothing is embedded again). Searches
    from other processes keep working and see each batch as soon as it is committed. The index's
    write lock is taken per batch, so `serve`'s POST /texts and other writers get their turn in
    between. Ctrl-C stops cleanly (exit code 130); every committed batch is kept.

    \b
    Examples:
      semsearch watch notes/
      semsearch watch docs/ src/ --include '*.md' --include '*.py'
      semsearch watch -i ~/notes/.semsearch --json | jq .files_added
    """
    check_walk_options(paths, include, exclude, no_ignore, "each remembered folder is watched with its own options")
    with interruptible(), open_index(find_index(index_dir, for_writing=True), **settings) as index:
        try:
            index.watch(list(paths) or None, include=include, exclude=exclude, use_ignore_files=not no_ignore,
                        debounce_ms=debounce_ms, on_batch=lambda batch: _print_batch(batch, as_json, paths))
        except KeyboardInterrupt:
            click.echo("Stopped watching; every committed batch is kept.", err=True)
            sys.exit(130)


def _print_batch(batch: WatchBatch, as_json: bool, paths) -> None:
    if as_json:
        click.echo(json.dumps(batch.to_dict(), ensure_ascii=False))
    elif batch.number == 0:
        where = ", ".join(str(p) for p in paths) or "the remembered folders"
        click.echo(f"Indexed {where}: {batch.summary()}; watching for changes (Ctrl-C to stop)")
    else:
        click.echo(batch.summary())
    if not as_json:
        for problem in batch.problems:
            click.echo(f"  {display_path(problem.path)}: {problem.reason}", err=True)
    sys.stdout.flush()
