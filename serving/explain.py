"""Per-word attributions by occlusion, for KServe's v1 ``:explain`` verb: a word's attribution to a class is
how much the class's probability drops when that word is left out. One model call per request (the text
and each of its one-word-out variants together), the same for every model family, in the runtime the
predictor serves; bounded in texts per request and words per text (400 beyond)."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from kserve.errors import InvalidInput

from core.labels import LABELS
from serving.payload import Predictions, RequestLimits, texts_from_v1

METHOD = "occlusion"


@dataclass(frozen=True)
class ExplainLimits:
    """Bounds of one ``:explain`` request: it costs ``texts x (words + 1)`` texts of model compute."""

    max_texts: int = 8
    max_words: int = 64


def words_of(text: str) -> list[str]:
    """The words a text is explained by: its whitespace-separated tokens."""
    return text.split()


def without_each_word(words: list[str]) -> list[str]:
    """The text with each word left out in turn."""
    return [" ".join(words[:i] + words[i + 1 :]) for i in range(len(words))]


def explanation_texts(payload: object, limits: ExplainLimits, max_text_chars: int) -> list[str]:
    """The texts of a v1 ``{"instances": [...]}`` body, within the bounds; InvalidInput (400) otherwise."""
    texts = texts_from_v1(
        payload, RequestLimits(max_instances=limits.max_texts, max_text_chars=max_text_chars)
    )
    for i, text in enumerate(texts):
        count = len(words_of(text))
        if count > limits.max_words:
            raise InvalidInput(f"instances[{i}] has {count} words; :explain takes at most {limits.max_words}")
    return texts


def explain(texts: list[str], predict: Callable[[list[str]], Predictions]) -> dict:
    """Each text's label and, per word, its attribution to that label and to every class."""
    words = [words_of(text) for text in texts]
    variants = [
        variant for text, ws in zip(texts, words, strict=True) for variant in (text, *without_each_word(ws))
    ]
    predictions = predict(variants)
    explanations, row = [], 0
    for text_words in words:
        full, occluded = (
            predictions.probabilities[row],
            predictions.probabilities[row + 1 : row + 1 + len(text_words)],
        )
        label = predictions.labels[row]
        drops = full[np.newaxis, :] - occluded  # [words, classes]
        explanations.append(
            {
                "label": label,
                "probabilities": dict(zip(LABELS, full.tolist(), strict=True)),
                "words": [
                    {
                        "word": word,
                        "attribution": float(drop[LABELS.index(label)]),
                        "attributions": dict(zip(LABELS, drop.tolist(), strict=True)),
                    }
                    for word, drop in zip(text_words, drops, strict=True)
                ],
            }
        )
        row += 1 + len(text_words)
    return {"explanations": explanations, "model_version": predictions.version, "method": METHOD}
