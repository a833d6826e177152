"""Where model weights come from: the hub when it answers, else the bundled all-MiniLM-L6-v2 weights."""

from core import hub


def test_hub_default_falls_back_to_the_bundled_weights_offline(monkeypatch) -> None:
    """The hub's reachability is faked here (both answers), so the test means the same on any network."""
    monkeypatch.setattr(hub, "hub_unreachable", lambda: "no network")
    assert hub.resolve_model("distilbert-base-uncased", "all-MiniLM-L6-v2") == hub.bundled_minilm_path()
    monkeypatch.setattr(hub, "hub_unreachable", lambda: None)
    assert hub.resolve_model("distilbert-base-uncased", "all-MiniLM-L6-v2") == "distilbert-base-uncased"
    assert hub.resolve_model("sentence-transformers/all-MiniLM-L6-v2") == hub.bundled_minilm_path()
