"""Tag schemes of token data: IOB1, IOB2 and BIOES tags normalised to IOB2, and the entities of an IOB2 sequence
(the one span extractor that readers, metrics and decoding share)."""

from __future__ import annotations

from collections.abc import Sequence

from graft.errors import ConfigError, DataError, did_you_mean

__all__ = ["TAG_SCHEMES", "normalize_tags", "entity_spans"]


TAG_SCHEMES: tuple[str, ...] = ("auto", "iob2")
"""Values of the ``scheme`` argument of :func:`normalize_tags` and the readers."""


_PREFIXES = frozenset("BIESLU")


_MAX_BAD_TAGS = 10


_TAG_HINT = "Tags must be 'O' or a prefix B-, I-, E-, S-, L- or U- followed by a type, e.g. B-PER, I-LOC."


def _check_scheme(scheme: str) -> None:
    if scheme not in TAG_SCHEMES:
        raise ConfigError(
            f"Unknown tag scheme '{scheme}'.{did_you_mean(str(scheme), TAG_SCHEMES)} Use 'auto' (convert IOB1, "
            "BIOES and BILOU to IOB2) or 'iob2' (tags are already IOB2; check them)."
        )


def _split_tag(tag: str) -> tuple[str, str] | None:
    """Return ``(prefix, type)`` of a valid tag (``("O", "")`` for ``O``), else ``None``."""
    if tag == "O":
        return "O", ""
    if len(tag) >= 3 and tag[0] in _PREFIXES and tag[1] == "-" and tag[2:].strip() == tag[2:]:
        return tag[0], tag[2:]
    return None


def _tag_text(part: tuple[str, str]) -> str:
    """Render a parsed ``(prefix, type)`` tag back as text."""
    return "O" if part[0] == "O" else f"{part[0]}-{part[1]}"


def normalize_tags(
    seqs: Sequence[Sequence[str]], scheme: str = "auto", where: Sequence[str] | None = None
) -> list[list[str]]:
    """Return the tag sequences in IOB2.

    Accepted input schemes:

    * IOB2 / BIO: ``B-X`` starts every entity, ``I-X`` continues it;
    * IOB1 (original CoNLL-2003): ``I-X`` starts an entity, ``B-X`` only starts one that directly follows
      another entity of the same type;
    * BIOES / BILOU: ``S-X``/``U-X`` (single-token entity) become ``B-X``, ``E-X``/``L-X`` (last token) become
      ``I-X``;
    * ``O`` outside entities.

    With ``scheme="auto"`` every ``I-X`` that starts an entity (it does not follow ``B-X`` or ``I-X`` of the same
    type) becomes ``B-X``. This converts IOB1 and leaves valid IOB2 unchanged. With ``scheme="iob2"`` the tags
    must already be IOB2: ``E-``/``S-``/``L-``/``U-`` tags and an ``I-X`` that starts an entity are errors.

    Args:
        seqs: One tag list per sentence.
        scheme: ``"auto"`` or ``"iob2"``.
        where: A name per sentence for messages (e.g. ``"file.conll:line 12"``); ``"sentence[i]"`` when ``None``.

    Returns:
        New lists of IOB2 tags, one per sentence.

    Raises:
        ConfigError: ``scheme`` is unknown.
        DataError: A tag is not ``O`` nor ``<P>-<TYPE>`` with ``P`` in B, I, E, S, L, U (up to 10 listed), or,
            with ``scheme="iob2"``, a tag breaks IOB2.
    """
    _check_scheme(scheme)

    def name(i: int) -> str:
        return where[i] if where is not None and i < len(where) else f"sentence[{i}]"

    bad: list[str] = []
    n_bad = 0
    parsed: list[list[tuple[str, str]]] = []
    for i, seq in enumerate(seqs):
        row: list[tuple[str, str]] = []
        for j, tag in enumerate(seq):
            part = _split_tag(tag) if isinstance(tag, str) else None
            if part is None:
                n_bad += 1
                if len(bad) < _MAX_BAD_TAGS:
                    bad.append(f"{name(i)}, token {j + 1}: {tag!r}")
                part = ("O", "")
            row.append(part)
        parsed.append(row)
    if n_bad:
        more = f"\n  ... and {n_bad - len(bad)} more" if n_bad > len(bad) else ""
        raise DataError(
            f"{n_bad} tag{'s are' if n_bad > 1 else ' is'} not valid:\n"
            + "\n".join(f"  - {b}" for b in bad)
            + f"{more}\n{_TAG_HINT}"
        )

    out: list[list[str]] = []
    broken: list[str] = []
    n_broken = 0
    for i, row in enumerate(parsed):
        tags: list[str] = []
        prev = ("O", "")
        for j, (prefix, kind) in enumerate(row):
            if scheme == "iob2" and prefix not in "BIO":
                raise DataError(
                    f"{name(i)}, token {j + 1}: tag '{prefix}-{kind}' is not IOB2 (scheme='iob2'). Use scheme='auto' "
                    "to convert BIOES/BILOU tags."
                )
            if prefix in "SU":
                prefix = "B"
            elif prefix in "EL":
                prefix = "I"
            continues = prev[0] in "BI" and prev[1] == kind
            if prefix == "I" and not continues:
                if scheme == "iob2":
                    n_broken += 1
                    if len(broken) < _MAX_BAD_TAGS:
                        after = "the sentence start" if j == 0 else f"'{_tag_text(row[j - 1])}'"
                        broken.append(f"{name(i)}, token {j + 1}: 'I-{kind}' follows {after}")
                prefix = "B"
            tags.append("O" if prefix == "O" else f"{prefix}-{kind}")
            prev = (prefix, kind)
        out.append(tags)
    if n_broken:
        more = f"\n  ... and {n_broken - len(broken)} more" if n_broken > len(broken) else ""
        raise DataError(
            f"{n_broken} entit{'ies start' if n_broken > 1 else 'y starts'} with an I- tag, which IOB2 does not "
            "allow (scheme='iob2'):\n"
            + "\n".join(f"  - {b}" for b in broken)
            + f"{more}\nStart entities with B-, or pass scheme='auto' to read the tags as IOB1 and convert them."
        )
    return out


def entity_spans(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """Return the entities of an IOB2 tag sequence, strictly (as seqeval's strict IOB2 mode).

    An entity is a ``B-X`` followed by any number of ``I-X`` of the same type. An ``I-X`` that does not continue
    an entity of type ``X`` belongs to no entity.

    Args:
        tags: IOB2 tags of one sentence.

    Returns:
        ``(type, start, end)`` per entity, ``end`` exclusive, in order.

    Raises:
        DataError: A tag is not ``O``, ``B-X`` or ``I-X`` (normalise with :func:`normalize_tags` first).
    """
    spans: list[tuple[str, int, int]] = []
    current: tuple[str, int] | None = None
    for j, tag in enumerate(tags):
        part = _split_tag(tag) if isinstance(tag, str) else None
        if part is None or part[0] not in "BIO":
            raise DataError(f"Tag {j + 1} ({tag!r}) is not IOB2. Convert the tags with normalize_tags() first.")
        prefix, kind = part
        if prefix == "I" and current is not None and current[0] == kind:
            continue
        if current is not None:
            spans.append((current[0], current[1], j))
        current = (kind, j) if prefix == "B" else None
    if current is not None:
        spans.append((current[0], current[1], len(tags)))
    return spans
