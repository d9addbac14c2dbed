"""Find, read and check token classification (named-entity recognition) data.

Token data reaches Graft as a CoNLL file (one token per line, whitespace-separated columns, blank line between
sentences), a JSON Lines file of ``{"tokens": [...], "tags": [...]}`` objects, a folder of per-split files, or
lists in memory. Tags are normalised to IOB2 (``B-X`` starts an entity, ``I-X`` continues it, ``O`` is
outside), whatever scheme the file uses: IOB1, IOB2/BIO, BIOES or BILOU.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

from graft.data._tables import _decode_utf8, _loads, _read_bytes
from graft.data.splits import SPLIT_ORDER as _SPLIT_ORDER
from graft.data.splits import TOKEN_SPLIT_ALIASES as _SPLIT_ALIASES
from graft.data.splits import Splits
from graft.data.tags import TAG_SCHEMES, _check_scheme, entity_spans, normalize_tags
from graft.data.text_cells import _listing
from graft.errors import DataError

__all__ = [
    "TokenInput",
    "TokenSet",
    "read_conll",
    "read_token_jsonl",
    "find_token_splits",
    "load_tokens",
    "normalize_tags",
    "entity_spans",
    "TAG_SCHEMES",
]

TokenInput: TypeAlias = "str | os.PathLike[str] | Sequence[Sequence[str]] | Sequence[str]"
"""What :func:`load_tokens` accepts as ``X``."""


_JSON_EXTENSIONS = frozenset({".jsonl", ".json"})
_TOKEN_KEYS = ("tokens", "words")
_TAG_KEYS = ("tags", "ner_tags", "labels")


# --------------------------------------------------------------------------------------------------------
# Result container
# --------------------------------------------------------------------------------------------------------


@dataclass
class TokenSet:
    """Tokenised sentences with their tags and provenance.

    Attributes:
        tokens: One list of tokens (words) per sentence.
        tags: One IOB2 tag per token, or ``None`` when no tags were given (prediction data).
        sources: Where each sentence came from: ``"path:line N"`` (the line of its first token), or
            ``"sentence[i]"`` for in-memory inputs.
        hashes: Hex BLAKE2b digest (16 bytes) of the sentence's tokens (UTF-8, joined by ``"\\x1f"``). Tags do not
            enter the hash, so equal hashes mean duplicate sentences.
    """

    tokens: list[list[str]]
    tags: list[list[str]] | None
    sources: list[str]
    hashes: list[str]

    def __post_init__(self) -> None:
        n = len(self.tokens)
        if len(self.sources) != n or len(self.hashes) != n or (self.tags is not None and len(self.tags) != n):
            raise ValueError(
                f"TokenSet fields disagree in length: {n} sentences, {len(self.sources)} sources, "
                f"{len(self.hashes)} hashes, {'no' if self.tags is None else len(self.tags)} tag lists"
            )
        if self.tags is not None:
            for i, (toks, tags) in enumerate(zip(self.tokens, self.tags)):
                if len(toks) != len(tags):
                    raise ValueError(f"TokenSet sentence {i} has {len(toks)} tokens but {len(tags)} tags")

    def __len__(self) -> int:
        """Return the number of sentences."""
        return len(self.tokens)

    def subset(self, idx: Sequence[int]) -> TokenSet:
        """Return a new set holding only the sentences at ``idx``, in that order.

        Args:
            idx: Positions to keep (Python or numpy integers).

        Returns:
            The selected sentences as a new :class:`TokenSet` (token and tag lists are copied).
        """
        positions = [int(i) for i in idx]
        return TokenSet(
            tokens=[list(self.tokens[i]) for i in positions],
            tags=None if self.tags is None else [list(self.tags[i]) for i in positions],
            sources=[self.sources[i] for i in positions],
            hashes=[self.hashes[i] for i in positions],
        )


def _digest(tokens: Sequence[str]) -> str:
    return hashlib.blake2b("\x1f".join(tokens).encode("utf-8"), digest_size=16).hexdigest()


def _make_set(tokens: list[list[str]], tags: list[list[str]] | None, sources: list[str], scheme: str) -> TokenSet:
    if tags is not None:
        tags = normalize_tags(tags, scheme, where=sources)
    return TokenSet(tokens=tokens, tags=tags, sources=sources, hashes=[_digest(t) for t in tokens])


# --------------------------------------------------------------------------------------------------------
# Tag schemes
# --------------------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------------------------


def _read_text(path: str | os.PathLike[str], hint: str) -> str:
    file = Path(path)
    if not file.exists():
        raise DataError(f"'{path}' does not exist. Check the path.")
    if file.is_dir():
        raise DataError(f"'{path}' is a folder; {hint}")
    return _decode_utf8(_read_bytes(file, str(path)), str(path))


def read_conll(
    path: str | os.PathLike[str], *, token_column: int = 0, tag_column: int = -1, scheme: str = "auto"
) -> TokenSet:
    """Read a CoNLL-style file: one token per line, whitespace-separated columns, a blank line between sentences.

    Lines starting with ``-DOCSTART-`` are skipped and end the current sentence. Lines starting with ``"# "``
    before a sentence's first token are comments (as in CoNLL-U) and are skipped; inside a sentence such a line
    is a ``#`` token. A file in which every token line has a single column has no tags (prediction input); a
    file mixing one-column and several-column lines is an error.

    Args:
        path: The file (UTF-8).
        token_column: Column of the token (0-based; negative counts from the end).
        tag_column: Column of the tag (default: the last).
        scheme: Tag scheme, see :func:`normalize_tags`.

    Returns:
        The sentences as a :class:`TokenSet` with IOB2 tags (or ``tags=None``), in file order.

    Raises:
        DataError: The file is missing, not UTF-8 (line and byte offset named), has no sentences, mixes tagged
            and untagged lines, lacks the requested column on some line, or has invalid tags.
        ConfigError: ``scheme`` is unknown.
    """
    _check_scheme(scheme)
    text = _read_text(path, f"call graft.data.find_token_splits('{path}') to read a folder of split files.")
    rows: list[list[tuple[int, list[str]]]] = []
    current: list[tuple[int, list[str]]] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("-DOCSTART-"):
            if current:
                rows.append(current)
                current = []
            continue
        if not current and line.startswith("# "):
            continue
        current.append((lineno, stripped.split()))
    if current:
        rows.append(current)
    if not rows:
        raise DataError(
            f"'{path}' holds no sentences. Write one token per line (token and tag separated by whitespace) with "
            "a blank line between sentences."
        )
    tagged = any(len(cols) > 1 for sentence in rows for _, cols in sentence)
    problems: list[str] = []
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    for sentence in rows:
        toks: list[str] = []
        tgs: list[str] = []
        for lineno, cols in sentence:
            if tagged and len(cols) == 1:
                problems.append(f"{path}:line {lineno}: only one column ({cols[0]!r}), the tag is missing")
                continue
            if tagged:
                try:
                    toks.append(cols[token_column])
                    tgs.append(cols[tag_column])
                except IndexError:
                    problems.append(
                        f"{path}:line {lineno}: {len(cols)} columns, no column {token_column} (token) and "
                        f"{tag_column} (tag)"
                    )
            else:
                toks.append(cols[0])
        tokens.append(toks)
        tags.append(tgs)
    if problems:
        if Path(path).suffix.lower() in (".csv", ".parquet", ".json"):  # (a .tsv may be CoNLL with tabs)
            raise DataError(
                f"'{path}' is a table, not CoNLL: token classification (NER) reads one word and its tag per line, a "
                "blank line between sentences, or JSONL with tokens and tags. For one label per text, train with "
                "--task text-classification (or tabular-classification for a table of features)."
            )
        raise DataError(
            f"'{path}' has {len(problems)} line{'s' if len(problems) > 1 else ''} that do not match the others:\n"
            f"{_listing(problems)}\nEvery token line needs the same columns (token ... tag), or no tags at all "
            "for prediction input. Fix these lines, or choose the columns with token_column=/tag_column=."
        )
    sources = [f"{path}:line {sentence[0][0]}" for sentence in rows]
    return _make_set(tokens, tags if tagged else None, sources, scheme)


def _records(text: str, path: str | os.PathLike[str]) -> list[tuple[str, Any]]:
    if text.lstrip().startswith("["):
        try:
            items = _loads(text, f"'{path}'")
        except json.JSONDecodeError as exc:
            raise DataError(
                f"'{path}' is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}). Give one "
                "JSON object per line or a JSON array of objects."
            ) from exc
        return [(f"{path}:item {i + 1}", item) for i, item in enumerate(items)]
    out: list[tuple[str, Any]] = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            out.append((f"{path}:line {lineno}", _loads(line, f"{path}:line {lineno}")))
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{path}:line {lineno} is not valid JSON ({exc.msg}, column {exc.colno}). Each line must be one "
                'object such as {"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}.'
            ) from exc
    return out


def _strings(values: Any, source: str, what: str, allow_numbers: bool) -> list[str]:
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if not isinstance(values, (list, tuple)):
        raise DataError(f"{source}: {what} is a {type(values).__name__}, not a list.")
    out: list[str] = []
    for value in values:
        if isinstance(value, str):
            out.append(value)
        elif allow_numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append(str(value))
        else:
            raise DataError(f"{source}: {what} holds {value!r} ({type(value).__name__}); give strings.")
    return out


def read_token_jsonl(path: str | os.PathLike[str], *, scheme: str = "auto") -> TokenSet:
    """Read JSON Lines of ``{"tokens": [...], "tags": [...]}`` (or a JSON array of such objects).

    ``"words"`` is accepted for the tokens and ``"ner_tags"`` or ``"labels"`` for the tags. Tags must be names
    (``"B-PER"``); numeric tag ids, as in Hugging Face datasets, are refused with a hint. Either every record
    has tags or none does (prediction input).

    Args:
        path: The file (UTF-8).
        scheme: Tag scheme, see :func:`normalize_tags`.

    Returns:
        The sentences as a :class:`TokenSet` with IOB2 tags (or ``tags=None``), sources ``"path:line N"``.

    Raises:
        DataError: The file is missing or malformed, a record has no or empty tokens, tokens and tags differ in
            number (path, line and both lengths named), only some records have tags, or tags are invalid.
        ConfigError: ``scheme`` is unknown.
    """
    _check_scheme(scheme)
    text = _read_text(path, f"call graft.data.find_token_splits('{path}') to read a folder of split files.")
    records = _records(text, path)
    if not records:
        raise DataError(f"'{path}' holds no records. Write one JSON object per sentence.")
    tokens: list[list[str]] = []
    tags: list[list[str]] = []
    sources: list[str] = []
    with_tags: list[bool] = []
    example = '{"tokens": ["EU", "rejects"], "tags": ["B-ORG", "O"]}'
    for source, item in records:
        if not isinstance(item, dict):
            raise DataError(f"{source} is a JSON {type(item).__name__}, not an object such as {example}.")
        token_key = next((k for k in _TOKEN_KEYS if k in item), None)
        if token_key is None:
            raise DataError(
                f"{source} has no 'tokens' list (keys: {', '.join(map(str, item)) or 'none'}). Write objects "
                f"such as {example}."
            )
        toks = _strings(item[token_key], source, f"'{token_key}'", allow_numbers=True)
        if not toks:
            raise DataError(f"{source}: '{token_key}' is empty. Remove the record or give its tokens.")
        empty = [j + 1 for j, t in enumerate(toks) if not t.strip()]
        if empty:
            raise DataError(
                f"{source}: token{'s' if len(empty) > 1 else ''} {', '.join(map(str, empty[:10]))} "
                f"{'are' if len(empty) > 1 else 'is'} empty or whitespace. Remove {'them' if len(empty) > 1 else 'it'}."
            )
        tag_key = next((k for k in _TAG_KEYS if k in item and item[k] is not None), None)
        tgs: list[str] = []
        if tag_key is not None:
            raw = item[tag_key]
            if isinstance(raw, list) and raw and all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
                raise DataError(
                    f"{source}: '{tag_key}' holds numbers ({raw[:5]}...); give tag names such as 'B-PER'. For a "
                    "Hugging Face dataset map the ids with dataset.features['ner_tags'].feature.names."
                )
            tgs = _strings(raw, source, f"'{tag_key}'", allow_numbers=False)
            if len(tgs) != len(toks):
                raise DataError(f"{source}: {len(toks)} tokens but {len(tgs)} tags. Give exactly one tag per token.")
        tokens.append(toks)
        tags.append(tgs)
        sources.append(source)
        with_tags.append(tag_key is not None)
    if any(with_tags) and not all(with_tags):
        missing = [s for s, has in zip(sources, with_tags) if not has]
        raise DataError(
            f"'{path}' has tags on some records but not on {len(missing)}:\n{_listing(missing)}\nGive every "
            "record its tags, or none for prediction input."
        )
    return _make_set(tokens, tags if any(with_tags) else None, sources, scheme)


def _read_token_file(path: str | os.PathLike[str], scheme: str, token_column: int, tag_column: int) -> TokenSet:
    if Path(path).suffix.lower() in _JSON_EXTENSIONS:
        return read_token_jsonl(path, scheme=scheme)
    return read_conll(path, token_column=token_column, tag_column=tag_column, scheme=scheme)


def _split_of_name(name: str) -> set[str]:
    """Splits named by a file name: its parts split on ``.``, ``_`` and ``-`` (``eng.testa`` -> ``{"val"}``)."""
    return {_SPLIT_ALIASES[part] for part in re.split(r"[._\-]", name.lower()) if part in _SPLIT_ALIASES}


def find_token_splits(
    path: str | os.PathLike[str], *, scheme: str = "auto", token_column: int = 0, tag_column: int = -1
) -> Splits:
    """Read the splits of a token classification data set from a file or a folder.

    A file gives ``{"train": ...}``. In a folder each file's split comes from the parts of its name split on
    ``.``, ``_`` and ``-`` (so both the stem and the suffix count): train/training -> train;
    dev/val/valid/validation/testa -> val; test/testing/testb -> test. CoNLL-2003's ``eng.train``,
    ``eng.testa`` and ``eng.testb`` thus map to train, val and test, as do ``train.txt``, ``dev.txt`` and
    ``test.txt``. Hidden files and files naming no split are ignored. ``.jsonl``/``.json`` files are read as
    JSON Lines, anything else as CoNLL.

    Args:
        path: A file or a folder.
        scheme: Tag scheme, see :func:`normalize_tags`.
        token_column: CoNLL token column.
        tag_column: CoNLL tag column.

    Returns:
        ``{"train": TokenSet, "val": ..., "test": ...}`` with only the splits present, in that order
        (a :class:`~graft.data.splits.Splits`; ``marked`` is False when the input had no split marks).

    Raises:
        DataError: The path does not exist, a folder has no train file, two files for one split, or a file
            whose name names two splits; or a file cannot be read.
    """
    _check_scheme(scheme)
    root = Path(path)
    if not root.exists():
        raise DataError(f"'{path}' does not exist. Give a CoNLL/JSONL file or a folder with train/dev/test files.")
    if root.is_file():
        return Splits({"train": _read_token_file(path, scheme, token_column, tag_column)}, marked=False)
    with os.scandir(root) as it:
        names = sorted(e.name for e in it if not e.name.startswith(".") and e.is_file())
    found: dict[str, str] = {}
    for name in names:
        splits = _split_of_name(name)
        if len(splits) > 1:
            raise DataError(
                f"'{root / name}' names several splits ({', '.join(sorted(splits))}). Rename it so that its name "
                "holds one of train, dev or test."
            )
        if not splits:
            continue
        (split,) = splits
        if split in found:
            raise DataError(
                f"'{path}' has two files for the {split} split: '{found[split]}' and '{name}'. Remove or rename one."
            )
        found[split] = name
    if "train" not in found:
        listing = ", ".join(f"'{n}'" for n in names) if names else "no files"
        raise DataError(
            f"'{path}' has no training file (found: {listing}). Name the files train, dev and test (e.g. train.txt "
            "or eng.train), or give the training file itself."
        )
    return Splits(
        {
            split: _read_token_file(Path(path) / found[split], scheme, token_column, tag_column)
            for split in _SPLIT_ORDER
            if split in found
        }
    )


# --------------------------------------------------------------------------------------------------------
# In-memory inputs
# --------------------------------------------------------------------------------------------------------


def load_tokens(X: TokenInput, y: Any = None, *, scheme: str = "auto") -> TokenSet:
    """Load tokenised sentences (and tags) from a file or from lists.

    Args:
        X: One of

            * a path to a CoNLL or JSON Lines file (see :func:`find_token_splits` for how the format is chosen;
              tags come from the file, so ``y`` must be ``None``). A folder is refused: call
              :func:`find_token_splits`;
            * a list of token lists, e.g. ``[["EU", "rejects", "German"], ...]``;
            * a list of sentence strings, split on whitespace. A single tokenised sentence must be wrapped in a
              list (``[["EU", "rejects"]]``), else each token is taken as a sentence.
        y: One tag list per sentence, one tag per token, or ``None``.
        scheme: Tag scheme, see :func:`normalize_tags`.

    Returns:
        A :class:`TokenSet`; in-memory inputs have sources ``"sentence[i]"``.

    Raises:
        DataError: A missing path or folder, a bad input type, an empty sentence, or tags that do not match the
            sentences in number or length.
        ConfigError: ``scheme`` is unknown.
    """
    _check_scheme(scheme)
    if isinstance(X, (str, os.PathLike)):
        if not os.path.exists(X):
            raise DataError(
                f"'{X}' does not exist. Give a CoNLL/JSONL file, or in-memory sentences as a list (of token lists "
                "or of strings)."
            )
        if os.path.isdir(X):
            raise DataError(
                f"'{X}' is a folder; load_tokens takes one file. Call graft.data.find_token_splits('{X}') to read "
                "its train/dev/test files."
            )
        if y is not None:
            raise DataError(f"Tags come from '{X}' itself; pass y=None, or pass the sentences as lists with y.")
        return _read_token_file(X, scheme, 0, -1)
    if isinstance(X, np.ndarray):
        X = X.tolist()
    if not isinstance(X, (list, tuple)):
        raise DataError(
            f"X has unsupported type {type(X).__name__}. Give a file path, a list of token lists or a list of "
            "sentence strings."
        )
    if len(X) == 0:
        raise DataError("X is empty: there are no sentences to load.")
    sources = [f"sentence[{i}]" for i in range(len(X))]
    tokens: list[list[str]] = []
    empty: list[str] = []
    for source, sentence in zip(sources, X):
        if isinstance(sentence, str):
            toks = sentence.split()
        else:
            toks = _strings(sentence, source, "the sentence", allow_numbers=False)
            if any(not t.strip() for t in toks):
                raise DataError(f"{source} holds an empty or whitespace token. Remove it.")
        if not toks:
            empty.append(source)
        tokens.append(toks)
    if empty:
        raise DataError(f"{len(empty)} sentence(s) have no tokens:\n{_listing(empty)}\nRemove them.")
    tags: list[list[str]] | None = None
    if y is not None:
        if isinstance(y, np.ndarray):
            y = y.tolist()
        if isinstance(y, str) or not isinstance(y, (list, tuple)):
            raise DataError(f"y must be a list of tag lists, one per sentence; got {type(y).__name__}.")
        if len(y) != len(tokens):
            raise DataError(f"Got {len(tokens)} sentences but {len(y)} tag lists (y). Give one tag list per sentence.")
        tags = []
        for source, toks, seq in zip(sources, tokens, y):
            seq_tags = seq.split() if isinstance(seq, str) else _strings(seq, source, "y", allow_numbers=False)
            if len(seq_tags) != len(toks):
                raise DataError(f"{source}: {len(toks)} tokens but {len(seq_tags)} tags. Give one tag per token.")
            tags.append(seq_tags)
    return _make_set(tokens, tags, sources, scheme)
