"""Text drift on sentence embeddings: has the topic or domain of the traffic moved away from the
training data? Two two-sample tests of logged texts' embeddings against a reference sample of training
texts' embeddings (saved at training), each with a p-value valid at any sample size:

- **MMD** (maximum mean discrepancy, Gretton et al. 2012) with a Gaussian kernel whose bandwidth is the
  median pairwise distance, its p-value from a permutation test (the labels "reference" / "live"
  shuffled ``permutations`` times);
- a **domain classifier** (C2ST, Lopez-Paz & Oquab 2017): a logistic regression trained on half of the
  pooled rows to tell reference from live; the ROC AUC of its scores on the other half, whose p-value is
  the Mann-Whitney U test's (the AUC's permutation distribution, since the held-out half is independent
  of the fitted model). Copies of one text stay in one half: repeated texts (retweets, a busy client)
  would otherwise let the model recognise held-out rows it was fitted on.

A window is drifted when either p-value is below ``alpha / 2`` (Bonferroni: at most ``alpha`` false
alarms on traffic like the reference) and the shift is material: the classifier separates the two with
an AUC of at least ``min_auc`` (0.55 is Evidently's default for its embedding classifier). Significance
alone grows with the window: at 1,000 texts MMD tells TweetEval's validation tweets from its training
tweets (collected at other times) although no model notices (bench/embedding_drift.py).
"""

import io
from dataclasses import dataclass

import numpy as np
from scipy.stats import mannwhitneyu
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupShuffleSplit

EMBEDDING_BATCH_SIZE = 64


@dataclass(frozen=True)
class EmbeddingReference:
    """Sentence embeddings of a seeded sample of training texts, the encoder that made them, and each
    text's data source (None in references saved before sources were kept)."""

    encoder_id: str
    embeddings: np.ndarray  # (rows, dimensions), float32
    sources: np.ndarray | None = None  # (rows,), str

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        sources = {} if self.sources is None else {"sources": self.sources.astype(str)}
        np.savez_compressed(
            buffer, embeddings=self.embeddings, encoder_id=np.array(self.encoder_id), **sources
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "EmbeddingReference":
        with np.load(io.BytesIO(data)) as saved:
            sources = saved["sources"].astype(str) if "sources" in saved.files else None
            return cls(str(saved["encoder_id"]), saved["embeddings"].astype(np.float32), sources)


def embed(texts: list[str], encoder_id: str, progress: bool = False) -> np.ndarray:
    """Sentence embeddings of ``texts`` (normalised like training's) by the encoder ``encoder_id``."""
    from models.linear import embed_texts, load_encoder

    encoder = load_encoder(encoder_id)
    return embed_texts(encoder, texts, EMBEDDING_BATCH_SIZE, progress).astype(np.float32)


def build_embedding_reference(
    texts: list[str], encoder_id: str, rows: int, seed: int, sources: list[str] | None = None
) -> EmbeddingReference:
    """Embeddings of a seeded sample of ``rows`` of ``texts`` (all of them when there are fewer), with
    each sampled text's source when ``sources`` names them."""
    keep = np.random.default_rng(seed).choice(len(texts), size=min(rows, len(texts)), replace=False)
    kept_sources = np.array([sources[i] for i in keep]) if sources is not None else None
    embeddings = embed([texts[i] for i in keep], encoder_id, progress=True)
    return EmbeddingReference(encoder_id, embeddings, kept_sources)


def traffic_mix(reference: EmbeddingReference, live: np.ndarray, seed: int = 0) -> dict[str, float] | None:
    """How much of the ``live`` texts (their embeddings) resembles each training source: a logistic
    regression over the reference's embeddings by source (classes weighted equally, so the training
    mix does not tilt it), its class probabilities averaged over the live texts (probabilistic
    classify-and-count). None without sources, or with one."""
    if reference.sources is None or len(set(reference.sources)) < 2 or not len(live):
        return None
    from sklearn.linear_model import LogisticRegression

    classifier = LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed)
    classifier.fit(reference.embeddings, reference.sources)
    shares = classifier.predict_proba(live).mean(axis=0)
    return {str(source): float(share) for source, share in zip(classifier.classes_, shares, strict=True)}


@dataclass(frozen=True)
class TwoSampleTest:
    statistic: float
    pvalue: float


@dataclass(frozen=True)
class EmbeddingDrift:
    """Both tests on one window of live texts."""

    rows: int
    mmd: TwoSampleTest
    classifier: TwoSampleTest  # statistic: ROC AUC
    alpha: float
    min_auc: float

    @property
    def significant(self) -> bool:
        return min(self.mmd.pvalue, self.classifier.pvalue) < self.alpha / 2

    @property
    def drifted(self) -> bool:
        return self.significant and self.classifier.statistic >= self.min_auc


def mmd_test(reference: np.ndarray, live: np.ndarray, permutations: int, seed: int) -> TwoSampleTest:
    """Squared MMD (biased estimate) of ``live`` against ``reference`` and its permutation p-value."""
    pooled = np.concatenate([reference, live]).astype(np.float64)
    squared = np.sum(pooled**2, axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2 * pooled @ pooled.T, 0)
    bandwidth = np.median(distances[np.triu_indices(len(pooled), k=1)])
    kernel = np.exp(-distances / max(bandwidth, 1e-12))
    n, m = len(reference), len(live)
    rng = np.random.default_rng(seed)
    # each column assigns +1/n to the rows called "reference" and -1/m to the others: MMD^2 = s' K s
    signs = np.empty((n + m, permutations + 1))
    signs[:, 0] = np.r_[np.full(n, 1 / n), np.full(m, -1 / m)]
    for column in range(1, permutations + 1):
        signs[:, column] = rng.permutation(signs[:, 0])
    statistics = np.sum(signs * (kernel @ signs), axis=0)
    observed = statistics[0]
    pvalue = (1 + np.sum(statistics[1:] >= observed)) / (1 + permutations)
    return TwoSampleTest(float(observed), float(pvalue))


def classifier_test(reference: np.ndarray, live: np.ndarray, seed: int) -> TwoSampleTest:
    """ROC AUC of a reference-vs-live classifier on held-out rows, and its one-sided p-value."""
    features = np.concatenate([reference, live])
    is_live = np.r_[np.zeros(len(reference)), np.ones(len(live))]
    _, same_text = np.unique(features, axis=0, return_inverse=True)
    splitter = GroupShuffleSplit(n_splits=1, test_size=0.5, random_state=seed)
    fit, held_out = next(splitter.split(features, is_live, groups=same_text.ravel()))
    if len(set(is_live[fit])) < 2 or len(set(is_live[held_out])) < 2:
        return TwoSampleTest(0.5, 1.0)  # so few distinct texts that one half lacks a side: no evidence
    model = LogisticRegression(C=1.0, class_weight="balanced", max_iter=1000)
    scores = model.fit(features[fit], is_live[fit]).decision_function(features[held_out])
    truth = is_live[held_out]
    auc = roc_auc_score(truth, scores)
    pvalue = mannwhitneyu(scores[truth == 1], scores[truth == 0], alternative="greater").pvalue
    return TwoSampleTest(float(auc), float(pvalue))


def embedding_drift(
    reference: np.ndarray, live: np.ndarray, alpha: float, permutations: int, seed: int, min_auc: float
) -> EmbeddingDrift:
    """Both tests of ``live`` embeddings against ``reference`` embeddings."""
    return EmbeddingDrift(
        len(live),
        mmd_test(reference, live, permutations, seed),
        classifier_test(reference, live, seed),
        alpha,
        min_auc,
    )
