"""The LangChain retriever, with the real langchain-core."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_tests.integration_tests import RetrieversIntegrationTests

from semsearch.langchain import SemsearchRetriever

from tests.rag_corpus import build_index


def test_retriever_returns_documents_with_citable_metadata(rag_index):
    index, corpus = rag_index
    retriever = SemsearchRetriever(index=index, k=3, search_options={"paths": ["corpus/tea/*", "corpus/cooking/*"]})
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("why does Japanese green tea taste grassy")
    assert len(docs) == 3 and all(isinstance(doc, Document) for doc in docs)
    top = docs[0]
    assert top.metadata["path"] == str(corpus.resolve() / "tea" / "green-tea.md")
    assert "steamed" in top.page_content
    lines = Path(top.metadata["path"]).read_text(encoding="utf-8").splitlines()
    first, last = top.metadata["line_start"], top.metadata["line_end"]
    assert top.page_content.splitlines()[0] in lines[first - 1] and first <= last
    assert top.metadata["citation"] == f"{top.metadata['path']}:{first}" + (f"-{last}" if last != first else "")
    scores = [doc.metadata["score"] for doc in docs]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1.0 + 1e-6
    assert {"chunk_id", "document_id", "rank", "heading", "title"} <= set(top.metadata)
    assert top.metadata["heading"] == "Green tea"


def test_async_retrieval_matches_sync(rag_index):
    index, _ = rag_index
    retriever = SemsearchRetriever(index=index, k=2, mode="hybrid")
    sync_docs = retriever.invoke("炒糖色")
    async_docs = asyncio.run(retriever.ainvoke("炒糖色"))
    assert [d.metadata["chunk_id"] for d in async_docs] == [d.metadata["chunk_id"] for d in sync_docs]
    assert "糖色" in async_docs[0].page_content


def test_invoke_takes_k_and_search_options_per_call(rag_index):
    index, corpus = rag_index
    retriever = SemsearchRetriever(index=index)  # k=4 by default
    assert len(retriever.invoke("green tea", k=1)) == 1
    docs = retriever.invoke("green tea", k=2, mode="keyword", paths=["corpus/cooking/*"])
    assert docs == [] or all("cooking" in doc.metadata["path"] for doc in docs)
    docs = retriever.invoke("pan-fired in a wok", k=2, mode="hybrid", paths=["corpus/tea/*"])
    assert len(docs) == 2 and all(doc.metadata["path"].startswith(str(corpus.resolve() / "tea")) for doc in docs)
    assert len(asyncio.run(retriever.ainvoke("green tea", k=3))) == 3
    assert len(retriever.invoke("green tea")) == 4  # a per-call k does not stick


def test_invoke_rejects_an_unknown_option_by_name(rag_index):
    from semsearch.errors import ConfigError

    index, _ = rag_index
    with pytest.raises(ConfigError, match="does not take top_n"):
        SemsearchRetriever(index=index).invoke("green tea", top_n=2)


@pytest.fixture(scope="module")
def shared_index(tmp_path_factory, ollama_server_session):
    """One index for the standard tests, which only read it."""
    ollama_server_session.reset()
    index, _ = build_index(tmp_path_factory.mktemp("standard"), ollama_server_session.url)
    yield index
    index.close()


class TestSemsearchRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's own retriever conventions (`langchain-tests`), against a real index."""

    @pytest.fixture(autouse=True)
    def _use_index(self, shared_index):
        self.index = shared_index

    @property
    def retriever_constructor(self) -> type[SemsearchRetriever]:
        return SemsearchRetriever

    @property
    def retriever_constructor_params(self) -> dict:
        return {"index": self.index}

    @property
    def retriever_query_example(self) -> str:
        return "how do I patch an inner tube"
