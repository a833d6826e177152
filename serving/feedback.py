"""Live labels: the labels clients post back (``POST /v1/models/<name>:feedback``) joined to the answers
they label.

A feedback body is a JSON list of ``{"id": ..., "label": ...}`` (the id an answer carried; a ``"text"``
beside it is checked against the id) or ``{"text": ..., "label": ...}`` (this replica's latest answer for
that text), labels in LABELS. Ids are signed (serving/answer_ids.py), so any replica joins any answer's
label without shared state. Each row is joined or refused on its own, and the answer says which; with
``{"feedback": [...], "atomic": true}`` a body with any refused row is refused as a whole.
"""

import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass

from kserve.errors import InvalidInput

from core.labels import LABELS
from serving.answer_ids import AnswerSigner, ForgedId, text_digest


@dataclass(frozen=True)
class Answer:
    """One text the predictor answered."""

    id: str
    text: str | None  # None: labelled by id on a replica that did not answer it (the monitor joins it)
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


def join_feedback(
    payload: object, signer: AnswerSigner, answers: RecentAnswers, max_rows: int
) -> tuple[list[LabelledAnswer], list[dict]]:
    """(the rows of ``payload`` joined to their answers, the rows refused with why). An id is verified by
    its signature, so it needs no memory of the answer: any replica that shares the key joins it; its text
    is the row's (checked against the id's digest), else this replica's if it answered, else unknown (the
    monitor joins it from the prediction log). A row with a text and no id joins this replica's latest
    answer for that text. InvalidInput only for a body that is not a list of rows or too long."""
    if isinstance(payload, dict) and isinstance(payload.get("feedback"), list):
        payload = payload["feedback"]
    if not isinstance(payload, list) or not payload:
        raise _refused('expected a non-empty JSON list of {"id": ..., "label": ...} objects')
    if len(payload) > max_rows:
        raise _refused(f"{len(payload)} feedback rows in one request; the limit is {max_rows}")
    now, joined, refused = time.time(), [], []
    for i, row in enumerate(payload):
        answer = _answer_of(row, signer, answers)
        if isinstance(answer, str):
            refused.append({"row": i, "reason": answer})
        else:
            joined.append(LabelledAnswer(answer, row["label"], now))
    return joined, refused


def _answer_of(row: object, signer: AnswerSigner, answers: RecentAnswers) -> Answer | str:
    """The answer a feedback row labels, or why the row is refused."""
    if not isinstance(row, dict) or "label" not in row or not ({"id", "text"} & row.keys()):
        return 'must be an object with "label" and "id" (or "text")'
    label, answer_id, text = row["label"], row.get("id"), row.get("text")
    if label not in LABELS:
        return f"label {label!r} is not one of {', '.join(LABELS)}"
    if not isinstance(answer_id, str | None) or not isinstance(text, str | None):
        return '"id" and "text" must be strings'
    if answer_id is None:
        answer = answers.find(None, text)
        if answer is None:
            return f"text {text[:40]!r} was not answered recently by this replica: send the answer's id"
        return answer
    try:
        signed = signer.verify(answer_id)
    except ForgedId as exc:
        return f"id {answer_id[:40]!r} refused: {exc}"
    if text is not None and text_digest(text) != signed.text_digest:
        return "its text is not the text this id answered"
    remembered = answers.find(answer_id, None)
    known = text if text is not None else (remembered.text if remembered else None)
    return Answer(answer_id, known, signed.predicted, signed.confidence, signed.model_version, signed.time)


def _refused(problem: str) -> InvalidInput:
    return InvalidInput(f"feedback refused, nothing stored: {problem}")
