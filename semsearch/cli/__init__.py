"""The `semsearch` command: click commands that parse, make one library call, and format.

Errors from the library (SemsearchError) become one line on stderr and exit code 1; so does a
search or context that finds nothing (with the reason); bad usage is exit code 2 (click's own,
and an empty query); a traceback reaching the user is a bug.
"""

from __future__ import annotations

import click

from semsearch import __version__
from semsearch.cli import indexing, maintenance, searching, services, watching
from semsearch.cli.common import _Group


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="semsearch")
def cli() -> None:
    """Search your own documents by meaning, through Ollama embeddings.

    \b
    Examples:
      semsearch index data/
      semsearch search "invention of paper in China"
      semsearch COMMAND --help

    \b
    Exit status:
      0    success (search and context: something was found)
      1    an error, or search/context found nothing (the reason on stderr)
      2    bad usage, including an empty query
      130  interrupted (Ctrl-C); committed work is kept

    \b
    Settings: defaults < what the index records < environment < flags; what
    changes results (model, dimensions, chunking, ...) is fixed when the index
    is created.

    \b
    Environment:
      SEMSEARCH_INDEX            the index directory (all commands but eval)
      OLLAMA_HOST                Ollama server(s), a comma list
      SEMSEARCH_BASE_URL         OpenAI-compatible server (also OPENAI_BASE_URL)
      SEMSEARCH_API_KEY          its API key (also OPENAI_API_KEY)
      SEMSEARCH_RERANK_API_KEY   bearer token of a --rerank-url server
      SEMSEARCH_TOKEN            bearer token `serve` requires
      SEMSEARCH_CACHE            where `eval` keeps its indexes
      NO_COLOR                   no colour in `search` output (--color always wins)

    \b
    Shell completion (bash; zsh_source for zsh, fish_source for fish):
      eval "$(_SEMSEARCH_COMPLETE=bash_source semsearch)"
    """

for _command in (indexing.index_command, indexing.sources_command, searching.search_command, searching.context_command,
                 services.serve_command, services.mcp_command, maintenance.eval_command,
                 maintenance.status_command, maintenance.rebuild_command, watching.watch_command):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="semsearch")
