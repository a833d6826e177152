"""Live labels: the predictor remembers its recent answers (id, text, label, version) and joins the
labels that clients post back (``POST /v1/models/<name>:feedback``) to them.

A feedback body is a JSON list of ``{"id": ..., "label": ...}`` (the id an answer carried) or
``{"text": ..., "label": ...}`` (the latest answer for that text), labels in LABELS. A body with any bad
row is refused as a whole (400, with every problem listed), so nothing is half-stored.
"""

import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass

from kserve.errors import InvalidInput

from core.labels import LABELS


@dataclass(frozen=True)
class Answer:
    """One text the predictor answered."""

    id: str
    text: str
    predicted: str
    confidence: float
    model_version: str
    time: float


@dataclass(frozen=True)
class LabelledAnswer:
    """An answer with the label a client sent for it."""

    answer: Answer
    label: str
    labelled_at: float

    def as_record(self) -> dict:
        """One record of the feedback log: the answer's fields, ``label`` and ``labelled_at``."""
        return asdict(self.answer) | {"label": self.label, "labelled_at": self.labelled_at}


class RecentAnswers:
    """The last ``capacity`` answers, by id and by text (the latest answer for a text)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._by_id: OrderedDict[str, Answer] = OrderedDict()
        self._by_text: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, answers: list[Answer]) -> None:
        with self._lock:
            for answer in answers:
                self._by_id[answer.id] = answer
                self._by_text[answer.text] = answer.id
            while len(self._by_id) > self.capacity:
                _, old = self._by_id.popitem(last=False)
                if self._by_text.get(old.text) == old.id:
                    del self._by_text[old.text]

    def __len__(self) -> int:
        return len(self._by_id)

    def find(self, answer_id: str | None, text: str | None) -> Answer | None:
        with self._lock:
            if answer_id is None:
                answer_id = self._by_text.get(text)
            return self._by_id.get(answer_id) if answer_id is not None else None


def join_feedback(payload: object, answers: RecentAnswers, max_rows: int) -> list[LabelledAnswer]:
    """The answers ``payload`` labels; InvalidInput naming every bad row (unknown id or text, unknown
    label, too many rows, wrong shape)."""
    if isinstance(payload, dict) and isinstance(payload.get("feedback"), list):
        payload = payload["feedback"]
    if not isinstance(payload, list) or not payload:
        raise _refused('expected a non-empty JSON list of {"id": ..., "label": ...} objects')
    if len(payload) > max_rows:
        raise _refused(f"{len(payload)} feedback rows in one request; the limit is {max_rows}")
    now, joined, problems = time.time(), [], []
    for i, row in enumerate(payload):
        if not isinstance(row, dict) or "label" not in row or not ({"id", "text"} & row.keys()):
            problems.append(f'[{i}] must be an object with "label" and "id" (or "text")')
            continue
        label, answer_id, text = row["label"], row.get("id"), row.get("text")
        if label not in LABELS:
            problems.append(f"[{i}] label {label!r} is not one of {', '.join(LABELS)}")
            continue
        if not isinstance(answer_id, str | None) or not isinstance(text, str | None):
            problems.append(f'[{i}] "id" and "text" must be strings')
            continue
        answer = answers.find(answer_id, text)
        if answer is None:
            what = f"id {answer_id!r}" if answer_id is not None else f"text {text[:40]!r}"
            problems.append(
                f"[{i}] unknown {what}: not among the last {answers.capacity} answers of this server"
            )
            continue
        joined.append(LabelledAnswer(answer, label, now))
    if problems:
        raise _refused("; ".join(problems[:10]))
    return joined


def _refused(problem: str) -> InvalidInput:
    return InvalidInput(f"feedback refused, nothing stored: {problem}")
