"""The Ollama-protocol test server, exercised through the real ``ollama`` client."""

import math

import httpx
import numpy as np
import ollama
import pytest

EMBEDDER = "qwen3-embedding:0.6b"
RERANKER = "dengcao/Qwen3-Reranker-0.6B:Q8_0"
TASK = "Given a web search query, retrieve relevant passages that answer the query"


def qwen3_query(query: str) -> str:
    return f"Instruct: {TASK}\nQuery:{query}"


def rerank_prompt(query: str, document: str) -> str:
    return (
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the "
        'Query and the Instruct provided. Note that the answer can only be "yes" or "no".'
        "<|im_end|>\n<|im_start|>user\n"
        f"<Instruct>: {TASK}\n<Query>: {query}\n<Document>: {document}<|im_end|>\n"
        "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    )


@pytest.fixture
def client(ollama_host):
    return ollama.Client(host=ollama_host, timeout=60)


def rerank(client, query, document, **kwargs):
    return client.generate(
        model=RERANKER, prompt=rerank_prompt(query, document), raw=True,
        options={"num_predict": 1, "temperature": 0}, **kwargs,
    )


def top_probability(response, token):
    return sum(math.exp(t.logprob) for t in response.logprobs[0].top_logprobs if t.token == token)


def test_root_version_tags_and_show(client, ollama_host):
    assert httpx.get(ollama_host).text == "Ollama is running"
    assert httpx.get(f"{ollama_host}/api/version").json() == {"version": "0.13.0"}
    names = {m.model for m in client.list().models}
    assert {"qwen3-embedding:0.6b", "multilingual-e5-small:latest", RERANKER, "llama3.2:latest"} <= names

    shown = client.show("multilingual-e5-small")
    assert shown.capabilities == ["embedding"]
    assert shown.modelinfo["general.architecture"] == "bert"
    assert shown.modelinfo["bert.embedding_length"] == 384
    assert shown.modelinfo["bert.context_length"] == 512
    assert client.show("llama3.2").capabilities == ["completion"]


def test_embed_returns_unit_vectors_of_the_model_dimension(client, ollama_server):
    response = client.embed(model=EMBEDDER, input=["passage one", "passage two"])
    vectors = np.array(response.embeddings)
    assert vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert response.prompt_eval_count > 0
    assert len(client.embed(model=EMBEDDER, input="a single string").embeddings) == 1
    assert ollama_server.embed_texts == ["passage one", "passage two", "a single string"]


@pytest.mark.parametrize(("query", "relevant", "unrelated"), [
    ("how do I cook rice",
     "Rinse the rice, add 1.2 cups of water per cup and simmer covered for 15 minutes.",
     "Train tickets can be bought at the station or online."),
    ("如何煮米饭", "把米洗净，加水，小火煮十五分钟。", "火车票可以在车站或网上购买。"),
])
def test_qwen3_query_format_ranks_the_matching_passage_first(client, query, relevant, unrelated):
    response = client.embed(model=EMBEDDER, input=[qwen3_query(query), relevant, unrelated])
    vectors = np.array(response.embeddings)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.05


def test_empty_input_returns_no_embeddings(client):
    assert client.embed(model=EMBEDDER, input=[]).embeddings == []


def test_unknown_model_is_404_with_ollamas_message(client):
    with pytest.raises(ollama.ResponseError) as e:
        client.embed(model="no-such-model", input="x")
    assert e.value.status_code == 404
    assert e.value.error == 'model "no-such-model" not found, try pulling it first'


def test_embedding_with_a_generative_model_is_501(client):
    with pytest.raises(ollama.ResponseError) as e:
        client.embed(model="llama3.2", input="x")
    assert (e.value.status_code, e.value.error) == (501, "this model does not support embeddings")


def test_overflow_is_an_error_only_when_truncate_is_false(client):
    text = "a sentence that is clearly longer than eight tokens of context"
    with pytest.raises(ollama.ResponseError) as e:
        client.embed(model=EMBEDDER, input=text, truncate=False, options={"num_ctx": 8})
    assert (e.value.status_code, e.value.error) == (400, "the input length exceeds the context length")
    assert len(client.embed(model=EMBEDDER, input=text, options={"num_ctx": 8}).embeddings) == 1
    assert len(client.embed(model=EMBEDDER, input=text, truncate=False).embeddings) == 1


def test_dimensions_truncates_and_renormalises(client):
    full = np.array(client.embed(model=EMBEDDER, input="matryoshka").embeddings[0])
    short = np.array(client.embed(model=EMBEDDER, input="matryoshka", dimensions=128).embeddings[0])
    assert short.shape == (128,)
    assert np.linalg.norm(short) == pytest.approx(1.0, abs=1e-5)
    assert np.allclose(short, full[:128] / np.linalg.norm(full[:128]), atol=1e-5)
    # Ollama ignores a dimensions value the model cannot reach; it does not reject it.
    assert len(client.embed(model=EMBEDDER, input="x", dimensions=4096).embeddings[0]) == 384


def test_fail_next_answers_an_error_then_recovers(client, ollama_server):
    ollama_server.fail_next = 1
    with pytest.raises(ollama.ResponseError) as e:
        client.embed(model=EMBEDDER, input="x")
    assert e.value.status_code == 500
    ollama_server.fail_next, ollama_server.fail_status = 1, 503
    with pytest.raises(ollama.ResponseError) as e:
        client.embed(model=EMBEDDER, input="x")
    assert e.value.status_code == 503
    assert len(client.embed(model=EMBEDDER, input="x").embeddings) == 1


def test_drop_next_closes_the_connection_without_a_response(client, ollama_server):
    ollama_server.drop_next = 1
    with pytest.raises((httpx.TransportError, ConnectionError)):
        client.embed(model=EMBEDDER, input="x")
    assert len(client.embed(model=EMBEDDER, input="x").embeddings) == 1


def test_delay_per_text_slows_embedding(client, ollama_server):
    ollama_server.delay_per_text = 0.05
    response = client.embed(model=EMBEDDER, input=["a", "b", "c", "d"])
    assert response.total_duration >= 0.2e9


def test_pull_streams_progress_then_the_model_embeds(client, ollama_server):
    with pytest.raises(ollama.ResponseError):
        client.embed(model="nomic-embed-text", input="x")
    progress = list(client.pull("nomic-embed-text", stream=True))
    statuses = [p.status for p in progress]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    layer = [p for p in progress if p.digest == progress[1].digest]
    assert [p.completed for p in layer] == sorted(p.completed for p in layer)
    assert layer[-1].completed == layer[-1].total
    vector = client.embed(model="nomic-embed-text", input="search_document: x").embeddings[0]
    assert len(vector) == 384

    ollama_server.reset()
    assert "nomic-embed-text:latest" not in {m.model for m in client.list().models}


def test_pull_of_an_unknown_model_fails_like_ollama(client):
    with pytest.raises(ollama.ResponseError) as e:
        list(client.pull("no-such-model", stream=True))
    assert e.value.error == "pull model manifest: file does not exist"
    with pytest.raises(ollama.ResponseError) as e:
        client.pull("no-such-model")
    assert (e.value.status_code, e.value.error) == (500, "pull model manifest: file does not exist")


def test_reranker_scores_relevant_documents_higher(client, ollama_server):
    query = "how do I cook rice"
    relevant = rerank(client, query, "Rinse the rice, add water and simmer for 15 minutes.",
                      logprobs=True, top_logprobs=20)
    unrelated = rerank(client, query, "Train tickets can be bought at the station.",
                       logprobs=True, top_logprobs=20)
    for response in (relevant, unrelated):
        assert response.done and response.done_reason == "length"
        entry = response.logprobs[0]
        assert entry.token == response.response
        assert len(entry.top_logprobs) == 20
        assert {"yes", "no"} <= {t.token for t in entry.top_logprobs}

    def score(r):
        p_yes, p_no = top_probability(r, "yes"), top_probability(r, "no")
        return p_yes / (p_yes + p_no)

    assert score(relevant) > 0.5 > score(unrelated)
    assert relevant.response == "yes" and unrelated.response == "no"
    raw = ollama_server.requests[-1][1]
    assert raw["raw"] is True and raw["top_logprobs"] == 20


def test_old_ollama_omits_logprobs(client, ollama_server):
    ollama_server.version = "0.12.10"
    response = rerank(client, "rice", "Cook the rice.", logprobs=True, top_logprobs=20)
    assert response.response in {"yes", "no"}
    assert response.logprobs is None


def test_top_logprobs_out_of_range_is_400(client):
    with pytest.raises(ollama.ResponseError) as e:
        rerank(client, "rice", "Cook the rice.", logprobs=True, top_logprobs=21)
    assert (e.value.status_code, e.value.error) == (400, "top_logprobs must be between 0 and 20")


def test_generate_on_an_embedding_model_is_400(client):
    with pytest.raises(ollama.ResponseError) as e:
        client.generate(model=EMBEDDER, prompt="hello")
    assert (e.value.status_code, e.value.error) == (400, '"qwen3-embedding:0.6b" does not support generate')


def test_generate_on_an_unknown_model_is_404(client):
    with pytest.raises(ollama.ResponseError) as e:
        client.generate(model="no-such-model", prompt="hello")
    assert (e.value.status_code, e.value.error) == (404, "model 'no-such-model' not found")


def test_streamed_generate_sends_the_token_then_done(client):
    chunks = list(client.generate(model=RERANKER, prompt=rerank_prompt("rice", "Cook the rice."),
                                  raw=True, stream=True, logprobs=True, top_logprobs=2))
    assert [c.done for c in chunks] == [False, True]
    assert chunks[0].response in {"yes", "no"} and len(chunks[0].logprobs[0].top_logprobs) == 2
