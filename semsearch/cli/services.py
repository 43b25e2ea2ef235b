"""`semsearch serve` (JSON HTTP API) and `semsearch mcp` (MCP tools on stdio)."""

from __future__ import annotations

import click

from semsearch.cli.common import (
    SETTING_OPTIONS,
    find_index,
    gather,
    host_option,
    index_option,
    keep_alive_option,
    timeout_option,
)


@click.command("serve", short_help="Serve search and context as a JSON HTTP API.")
@gather("settings", SETTING_OPTIONS)
@index_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; anything but loopback exposes the index to the network.")
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8765, show_default=True,
              help="Port to listen on (0 picks a free one).")
@click.option("--token", envvar="SEMSEARCH_TOKEN", show_envvar=True, default=None,
              help="Require `Authorization: Bearer TOKEN` on every request.")
@click.option("-m", "--model", default=None, help="Embedding model for a new index [default: qwen3-embedding:0.6b].")
@click.option("--dimensions", type=click.IntRange(min=1), default=None, metavar="N",
              help="Shorter (Matryoshka) vectors if the index is created by this server.")
@click.option("--max-body", type=click.IntRange(min=1024), default=4 * 1024 * 1024, show_default=True,
              metavar="BYTES", help="Largest request body accepted (larger ones get 413).")
@click.option("--watch", is_flag=True,
              help="Also keep the index current as the files of the folders it remembers change, as "
                   "`semsearch watch` does, serving searches throughout.")
@host_option
@timeout_option
@keep_alive_option
def serve_command(index_dir, host, port, token, max_body, watch, settings) -> None:
    """Serve search, context, status and text indexing as a JSON HTTP API (needs semsearch[serve]).

    Request types are strict (422 for a wrong type, never coerced); `rerank` takes true/false or an
    Ollama reranker model name. The OpenAPI schema at /openapi.json lists every status it sends.

    \b
    Examples:
      semsearch serve --port 8765
      SEMSEARCH_TOKEN=change-me semsearch serve --host 0.0.0.0
      semsearch serve --watch -i ~/notes/.semsearch
    """
    from semsearch.serve import ServeSettings, run_server

    served = ServeSettings(index_path=find_index(index_dir, for_writing=True), token=token or None, max_body=max_body,
                           watch=watch, **{**settings, "ollama_host": settings["ollama_host"] or None})
    run_server(served, host=host, port=port, announce=lambda url: click.echo(
        f"semsearch serving {served.index_path} on {url} (OpenAPI at {url}/docs)", err=True))


@click.command("mcp", short_help="Serve search and context as MCP tools on stdio.")
@gather("settings", SETTING_OPTIONS)
@index_option
@click.option("--watch", is_flag=True,
              help="Also keep the index current as the files of the folders it remembers change, as "
                   "`semsearch watch` does; batches are reported on stderr.")
@host_option
@timeout_option
@keep_alive_option
def mcp_command(index_dir, watch, settings) -> None:
    """Serve search, context, get, multi_get and status as MCP tools on stdio (needs semsearch[mcp]).

    \b
    Examples:
      semsearch mcp -i ~/notes/.semsearch
      semsearch mcp -i ~/notes/.semsearch --keep-alive 30m
      semsearch mcp --watch -i ~/notes/.semsearch
    """
    from semsearch.mcp_server import run_stdio

    run_stdio(find_index(index_dir, for_writing=watch), watch=watch, **settings)
