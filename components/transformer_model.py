"""The import path that the pickles of transformer models registered before models/ existed name (see
components/sentiment_model.py)."""

from models.transformer import TransformerSentimentModel as TransformerClassifier

__all__ = ["TransformerClassifier"]
