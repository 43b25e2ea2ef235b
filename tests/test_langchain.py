"""The LangChain retriever, with the real langchain-core."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

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
