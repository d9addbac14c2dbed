"""Token classification (NER): word/sub-token alignment, sliding windows, entity metrics and span decoding.

Conventions follow seqeval's strict IOB2 mode: an entity is a ``B-X`` followed by ``I-X`` tags; precision,
recall and F1 are micro-averaged over entities, an entity counting only when its type and both boundaries match.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..data.tags import entity_spans

__all__ = [
    "IGNORE",
    "N_SHAPES",
    "Window",
    "word_shape",
    "make_windows",
    "entity_metrics",
    "repair_iob2",
    "iob2_constraints",
    "viterbi_iob2",
    "split_words",
    "spans_with_offsets",
]

#: label of sub-tokens that carry no loss (continuation pieces, special tokens)
IGNORE = -100


@dataclass
class Window:
    """One model input covering words ``[start, end)`` of sentence ``sentence``.

    ``owned`` is the range of words whose prediction comes from this window (the middle part, so every word is
    predicted by the window where it has the most context on both sides).
    """

    sentence: int
    start: int
    end: int
    owned: tuple[int, int]
    input_ids: list[int]
    attention_mask: list[int]
    word_index: list[int]  # per sub-token: word index in the sentence for a word's first piece, else -1
    shape_ids: list[int] = field(default_factory=list)  # per sub-token: word_shape of a first piece, else 0


#: number of :func:`word_shape` classes (0: not a word's first sub-token)
N_SHAPES = 8


def word_shape(word: str) -> int:
    """The casing pattern of a word, for tokenizers that lowercase (they lose what most separates ``Apple`` the
    company from ``apple`` the fruit; casing features as in Collobert et al. 2011 and Lample et al. 2016).

    1 lower case, 2 Title case, 3 ALL CAPS, 4 a single capital, 5 mixed case, 6 contains a digit, 7 no letters.
    """
    if any(c.isdigit() for c in word):
        return 6
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return 7
    if all(c.islower() for c in letters):
        return 1
    if all(c.isupper() for c in letters):
        return 4 if len(letters) == 1 else 3
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return 2
    return 5


def make_windows(
    tokenizer: Any, sentences: Sequence[Sequence[str]], max_length: int, stride: int | None = None
) -> list[Window]:
    """Tokenise pre-split sentences; sentences longer than ``max_length`` sub-tokens become overlapping windows.

    No word is dropped: a sentence is cut at word boundaries into windows of at most ``max_length`` sub-tokens
    (special tokens included) that overlap by about ``stride`` sub-tokens (default a quarter of the window).
    """
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=False)
    if budget < 2:
        raise ValueError(f"max_length {max_length} leaves no room for tokens")
    stride = budget // 4 if stride is None else stride
    pieces_all = tokenizer(
        [list(s) for s in sentences], is_split_into_words=True, add_special_tokens=False, truncation=False
    )
    windows: list[Window] = []
    plan: list[tuple[int, int, int, tuple[int, int]]] = []
    for si, words in enumerate(sentences):
        ids = pieces_all["input_ids"][si]
        word_ids = pieces_all.word_ids(si)  # needs a fast (Rust) tokenizer
        # sub-token pieces of each word
        per_word: list[list[int]] = [[] for _ in words]
        for tok_id, w in zip(ids, word_ids):
            if w is not None:
                per_word[w].append(tok_id)
        for w, p in enumerate(per_word):  # a word the tokenizer maps to nothing (e.g. a control char): use [UNK]
            if not p:
                per_word[w] = [tokenizer.unk_token_id if tokenizer.unk_token_id is not None else 0]
            if len(per_word[w]) > budget:  # one absurdly long "word": keep its first pieces
                per_word[w] = per_word[w][:budget]
        spans: list[tuple[int, int]] = []
        start = 0
        while start < len(words):
            end, used = start, 0
            while end < len(words) and used + len(per_word[end]) <= budget:
                used += len(per_word[end])
                end += 1
            spans.append((start, end))
            if end >= len(words):
                break
            # next window starts so that about `stride` sub-tokens overlap
            back, overlap = end, 0
            while back - 1 > start and overlap + len(per_word[back - 1]) <= stride:
                back -= 1
                overlap += len(per_word[back])
            start = back
        if not words:
            spans = [(0, 0)]
        for k, (a, b) in enumerate(spans):
            # neighbouring windows split their overlap at its middle
            own_a = a if k == 0 else (a + spans[k - 1][1]) // 2
            own_b = b if k == len(spans) - 1 else (spans[k + 1][0] + b) // 2
            plan.append((si, a, b, (own_a, own_b)))
    # second pass: each window's words, with special tokens, in one batched call
    # truncation only ever cuts a single word longer than a whole window, which is planned alone in its window
    enc = tokenizer(
        [list(sentences[si][a:b]) or [""] for si, a, b, _ in plan],
        is_split_into_words=True,
        truncation=True,
        max_length=max_length,
    )
    for j, (si, a, b, owned) in enumerate(plan):
        ids = list(enc["input_ids"][j])
        seen: set[int] = set()
        word_index = []
        for w in enc.word_ids(j):
            if w is None or w in seen or a + w >= b:
                word_index.append(-1)
            else:
                seen.add(w)
                word_index.append(a + w)
        windows.append(Window(si, a, b, owned, ids, [1] * len(ids), word_index))
    return windows


def repair_iob2(tags: list[str]) -> list[str]:
    """Make a predicted sequence valid IOB2: an ``I-X`` that does not continue an ``X`` entity starts one."""
    out: list[str] = []
    prev = "O"
    for t in tags:
        if t.startswith("I-") and prev[2:] != t[2:]:
            t = "B-" + t[2:]
        out.append(t)
        prev = t
    return out


def iob2_constraints(classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Which tag may follow which in IOB2: ``(allowed (C, C), start (C,))``.

    ``allowed[i, j]`` is False when tag ``j`` is ``I-X`` and tag ``i`` is neither ``B-X`` nor ``I-X``;
    ``start[j]`` is False for every ``I-X`` (an entity begins with ``B-X``). Everything else is allowed.
    """
    n = len(classes)
    allowed = np.ones((n, n), dtype=bool)
    start = np.ones(n, dtype=bool)
    for j, c in enumerate(classes):
        if c.startswith("I-"):
            start[j] = False
            allowed[:, j] = [p[2:] == c[2:] and p[:2] in ("B-", "I-") for p in classes]
    return allowed, start


def viterbi_iob2(log_probs: np.ndarray, allowed: np.ndarray, start: np.ndarray) -> np.ndarray:
    """The tag sequence with the highest total log-probability among valid IOB2 sequences.

    Constrained decoding, as in AllenNLP's ``allowed_transitions``: per-word scores come from the classifier,
    transitions are 0 (allowed) or impossible. Unlike taking each word's best tag and then patching invalid
    ``I-X`` tags, a dubious word is tagged with the best *consistent* alternative, which removes the
    fragment entities that cost precision.

    Args:
        log_probs: ``(n_words, C)`` log-probabilities (or any per-word scores).
        allowed: ``(C, C)`` transition mask from :func:`iob2_constraints`.
        start: ``(C,)`` mask of tags a sentence may begin with.

    Returns:
        ``(n_words,)`` tag indices.
    """
    n_words, n_tags = log_probs.shape
    if n_words == 0:
        return np.zeros(0, dtype=np.int64)
    if not start.any():  # a tag set of only I- tags has no valid sequence: fall back to per-word argmax
        return log_probs.argmax(axis=1)
    trans = np.where(allowed, 0.0, -np.inf)
    score = np.where(start, log_probs[0], -np.inf)
    back = np.zeros((n_words, n_tags), dtype=np.int64)
    for t in range(1, n_words):
        cand = score[:, None] + trans
        back[t] = cand.argmax(axis=0)
        score = cand[back[t], np.arange(n_tags)] + log_probs[t]
    path = np.empty(n_words, dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(n_words - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def entity_metrics(true: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Entity-level precision/recall/F1 (micro, seqeval strict IOB2), per type, and token accuracy."""
    tp: Counter[str] = Counter()
    n_pred: Counter[str] = Counter()
    n_true: Counter[str] = Counter()
    correct_tokens = total_tokens = 0
    for t, p in zip(true, pred):
        ts, ps = set(entity_spans(t)), set(entity_spans(p))
        for kind, *_ in ts:
            n_true[kind] += 1
        for kind, *_ in ps:
            n_pred[kind] += 1
        for kind, *_ in ts & ps:
            tp[kind] += 1
        correct_tokens += sum(a == b for a, b in zip(t, p))
        total_tokens += len(t)

    def prf(a: int, np_: int, nt: int) -> dict[str, float]:
        p = a / np_ if np_ else 0.0
        r = a / nt if nt else 0.0
        return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}

    per_type = {k: {**prf(tp[k], n_pred[k], n_true[k]), "support": n_true[k]} for k in sorted(n_true | n_pred)}
    overall = prf(sum(tp.values()), sum(n_pred.values()), sum(n_true.values()))
    return {
        "n": len(true),
        **overall,
        "token_accuracy": correct_tokens / total_tokens if total_tokens else 0.0,
        "per_type": per_type,
        "n_entities": sum(n_true.values()),
    }


_WORD = re.compile(r"\w+(?:[-'.]\w+)*|[^\w\s]", re.UNICODE)


def split_words(text: str) -> tuple[list[str], list[tuple[int, int]]]:
    """Split raw text into CoNLL-like words (punctuation apart) with their character offsets."""
    words, offsets = [], []
    for m in _WORD.finditer(text):
        words.append(m.group())
        offsets.append((m.start(), m.end()))
    return words, offsets


def spans_with_offsets(
    text: str | None,
    words: Sequence[str],
    tags: Sequence[str],
    offsets: Sequence[tuple[int, int]] | None,
    scores: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Entities as dicts: ``label``, ``text``, ``start``/``end`` (characters, when offsets are known),
    ``word_start``/``word_end`` and a ``score`` (mean probability of the entity's tags)."""
    out = []
    for kind, a, b in entity_spans(tags):
        ent: dict[str, Any] = {"label": kind, "word_start": a, "word_end": b}
        if offsets is not None and text is not None:
            ent["start"], ent["end"] = offsets[a][0], offsets[b - 1][1]
            ent["text"] = text[ent["start"] : ent["end"]]
        else:
            ent["text"] = " ".join(words[a:b])
        if scores is not None:
            ent["score"] = round(float(np.mean(scores[a:b])), 6)
        out.append(ent)
    return out
