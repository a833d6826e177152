"""The import path that the pickles of linear models registered before models/ existed name. A process
that has imported the new ``components`` package (the gate, judging an old champion) finds their class
here; a fresh process (the predictor) loads them with the code they carry. Tested by
tests/unit/models/test_pre_move_models.py."""

from models.linear import LinearSentimentModel as SentimentClassifier

__all__ = ["SentimentClassifier"]
