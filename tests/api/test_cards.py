"""Study look-ups: the card list (filters, pages), facets and related cards."""

import pytest

from rag.cards import all_cards, load_corpus


@pytest.fixture
def corpus(settings):
    return all_cards(load_corpus(settings.corpus_dir))


def test_cards_are_listed_in_pages_that_cover_the_corpus_once(client, corpus):
    seen, offset = [], 0
    while True:
        page = client.get("/v1/cards", params={"limit": 4, "offset": offset}).json()
        assert page["total"] == len(corpus) and page["limit"] == 4
        if not page["cards"]:
            break
        assert len(page["cards"]) <= 4
        seen += [card["card_id"] for card in page["cards"]]
        offset += 4
    assert sorted(seen) == sorted(card.id for card in corpus) and len(seen) == len(set(seen))


def test_card_list_filters_like_search(client, corpus):
    params = {"topic": ["transformers", "regularization"], "difficulty": "medium", "limit": 100}
    page = client.get("/v1/cards", params=params).json()
    expected = {c.id for c in corpus
                if c.topic in params["topic"] and c.difficulty == "medium"}  # fmt: skip
    assert expected and {card["card_id"] for card in page["cards"]} == expected
    assert page["total"] == len(expected)
    assert client.get("/v1/cards", params={"deck": "no-such-deck"}).json()["total"] == 0


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"offset": -1}, {"difficulty": "impossible"},
     {"limit": "many"}],  # fmt: skip
)
def test_bad_card_list_parameters_get_422(client, params):
    response = client.get("/v1/cards", params=params)
    assert response.status_code == 422 and "detail" in response.json()


def test_facets_count_every_card_once_per_field(client, corpus):
    facets = client.get("/v1/facets").json()
    for field in ("topic", "difficulty", "deck"):
        values = {f["value"]: f["count"] for f in facets[field]}
        assert sum(values.values()) == len(corpus)
        for value, count in values.items():
            assert count == sum(1 for card in corpus if getattr(card, field) == value)
    assert [f["value"] for f in facets["difficulty"]] == ["easy", "medium", "hard"]


def test_related_cards_are_the_nearest_others(client, components):
    body = client.get("/v1/cards/dropout/related", params={"k": 4}).json()
    related = body["related"]
    assert body["card_id"] == "dropout" and len(related) == 4
    assert "dropout" not in [card["card_id"] for card in related]
    scores = [card["score"] for card in related]
    assert scores == sorted(scores, reverse=True)
    # Within the seed deck (which never grows), the nearest card to "dropout" is the one
    # about dropout at inference time.
    seed = client.get("/v1/cards/dropout/related",
                      params={"k": 1, "deck": "neural-network-fundamentals"}).json()  # fmt: skip
    assert [card["card_id"] for card in seed["related"]] == ["dropout-training-vs-inference"]
    # Every card not returned is at most as close as the last one returned.
    from rag.similarity import cosines

    ids = [cid for cid in components.store.card_ids() if cid != "dropout"]
    sims = cosines(components.store.vectors(["dropout"]), components.store.vectors(ids))[0]
    best = sorted(zip(sims, ids, strict=True), reverse=True)[:4]
    assert [cid for _, cid in best] == [card["card_id"] for card in related]


def test_related_cards_take_filters(client):
    related = client.get("/v1/cards/dropout/related",
                         params={"k": 10, "difficulty": "easy"}).json()["related"]  # fmt: skip
    assert related and all(card["difficulty"] == "easy" for card in related)


def test_related_to_an_unknown_card_is_404(client):
    response = client.get("/v1/cards/no-such-card/related")
    assert response.status_code == 404 and "no-such-card" in response.json()["detail"]
    assert client.get("/v1/cards/dropout/related", params={"k": 0}).status_code == 422
