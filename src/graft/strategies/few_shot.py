"""Few-shot text classification in the manner of SetFit (Tunstall et al., 2022, "Efficient Few-Shot Learning
Without Prompts", arXiv:2209.11055): contrastive fine-tuning of the sentence encoder on pairs, then a head.

First the encoder alone trains on pairs of labelled texts (:class:`~graft.training.plan.PairPhase`): in each of
each round of pairing every text is paired with a random text of its own label (target similarity 1) and one
of another label (target 0), and the cosine similarity of the two mean-pooled embeddings regresses onto the target
(the cosine-similarity loss of Sentence-BERT, Reimers & Gurevych, 2019). A few labelled texts give hundreds of pairs,
so the encoder learns the task's notion of similarity from little data. Then a linear head learns on the tuned,
L2-normalised embeddings: by default an L2-regularised logistic regression, as SetFit's head (or trained by AdamW as
in feature extraction, the estimator's ``epochs`` and ``lr`` being the head's).

When the classes are named by words (``negative``/``positive``, ``sports``/``politics``), sentences written from
the names ("This sentence is negative.") join the labelled texts in both phases: SetFit's templated examples
(``setfit.get_templated_dataset``), which carry what the encoder already knows about the words into the task.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import ConfigError
from ..training.plan import HeadPhase, LogisticHeadPhase, PairPhase, Phase
from .base import Criterion, Strategy, register_strategy

__all__ = ["FewShot", "CosineSimilarityLoss", "SupConLoss", "HEADS", "PAIR_LOSSES", "TEMPLATES", "is_word_label"]

#: how the head learns on the tuned embeddings
HEADS = ("logistic", "linear")
#: how the encoder learns on pairs: SetFit's cosine-similarity regression, or supervised contrastive batches
PAIR_LOSSES = ("cosine", "supcon")
#: label prompts: SetFit's template ("This sentence is {}") and four like it. On held-out SST-2 sentences (part of
#: GLUE's training split), 8 per class, the few-shot strategy scored 0.742 ± 0.019 with them (2 copies each) and
#: 0.645 ± 0.044 without (5 draws; feature extraction 0.624). Logistic regression on MiniLM embeddings (10 draws): these
#: five, twice each, 0.690 against 0.632 without prompts and 0.657 with SetFit's one template twice; at 64 per class
#: 0.754 against 0.746.
TEMPLATES = ("This sentence is {}.", "This text is {}.", "This example is {}.", "This is a {} sentence.", "{}.")
_WORD = re.compile(r"[^\W\d_]{3,}")


def is_word_label(name: Any) -> bool:
    """Whether a class name reads as a word (three letters in a row: ``negative``, ``sci_tech``; not ``0``, ``A``,
    ``B2``). Names like ``A``/``B`` carry no meaning: prompts written from them cost 4 points on held-out SST-2.

    Example:
        >>> is_word_label("positive"), is_word_label("label_1"), is_word_label("1"), is_word_label("B")
        (True, True, False, False)
    """
    return isinstance(name, str) and _WORD.search(name) is not None


class CosineSimilarityLoss(nn.Module):
    """Mean squared error between the cosine similarity of two embeddings and a target similarity (Sentence-BERT,
    Reimers & Gurevych, EMNLP 2019; SetFit's default loss).

    Shape: u, v ``(N, F)`` embeddings; target ``(N,)`` in [0, 1] (1: same label) → scalar. Negatives regressed onto
    -1 instead of 0 scored 0.799 against 0.803 on held-out SST-2 sentences (64 per class, draws 108 to 110).
    """

    def forward(self, u: torch.Tensor, v: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(F.cosine_similarity(u.float(), v.float(), dim=-1), target.float())


class SupConLoss(nn.Module):
    """Supervised contrastive loss (Khosla et al., NeurIPS 2020, "Supervised Contrastive Learning", eq. 2): every
    embedding of a batch is pulled towards all the others of its label and pushed from the rest, by a softmax over
    cosine similarities at ``temperature``.

    Shape: z ``(M, F)`` embeddings, labels ``(M,)`` → scalar (anchors without a positive in the batch count 0).

    Example:
        >>> z = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> bool(SupConLoss()(z, torch.tensor([0, 0, 1, 1])) < SupConLoss()(z, torch.tensor([0, 1, 0, 1])))
        True
    """

    def __init__(self, temperature: float = 0.1) -> None:
        super().__init__()
        self.temperature = temperature

    def forward(self, z: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        z = F.normalize(z.float(), dim=-1)
        self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
        logits = (z @ z.T / self.temperature).masked_fill(self_mask, float("-inf"))
        log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
        positive = (labels[:, None] == labels[None, :]) & ~self_mask
        per_anchor = log_prob.masked_fill(~positive, 0.0).sum(1) / positive.sum(1).clamp(min=1)
        return -per_anchor.mean()


@register_strategy
class FewShot(Strategy):
    """Contrastive pair fine-tuning of the text encoder, then a linear head on its normalised embeddings.

    For a handful to a few hundred labelled texts per class (text classification only: single-label, two or more
    classes). The encoder trains on ``2 * rounds * N`` pairs of the ``N`` texts (at most ``max_pairs``);
    for thousands of texts, ``fine-tune`` is the better use of the time. With only a few texts per class, pass
    ``val_fraction=0`` so that every labelled text trains (the CLI holds out 10% unless ``--val`` names a table).

    Args:
        pair_iterations: rounds of pairing (each text gets one positive and one negative pair per round). ``None``:
            ``max(20, N // 4)``: 20 rounds for a few texts, and for more as many pairs as SetFit's default sampling
            of every two texts (about ``N ** 2 / 2``). On held-out SST-2 data at 64 texts per class, 32 rounds (8,192
            pairs) scored 0.783 and 10 rounds (2,560) 0.773 (3 samples each); at 8 per class 20 rounds (640 pairs,
            SetFit's own count is 144) were chosen.
        max_pairs: at most this many pairs, which bounds the training time on larger sets (fewer rounds; ``None``:
            no bound): 8,192 are the 32 rounds of 128 texts (64 per class, about 4.5 minutes on 2 CPU cores); with
            the 80 label prompts of two word-named classes, 19 rounds of 208 texts (7,904 pairs, about 3.3 minutes).
        pair_epochs: passes over the pairs.
        pair_batch_size: pairs per step. On held-out SST-2 sentences at 64 per class (draws 108 to 110), 32 tied
            with 16 (0.804 against 0.803) in 10% less time.
        pair_lr: the encoder's learning rate while it trains on pairs (AdamW, warm-up then cosine decay). ``None``:
            SetFit's 2e-5 for 320 steps or more (64 texts per class: 512), scaled up as there are fewer steps, to at
            most 1e-4 (8 texts per class: 40 steps; with the label prompts of two classes, 288 steps at 2.2e-5)
            (:func:`graft.training.pairs.pair_lr`). Every parameter trains; the token embeddings left at their
            pretrained values tied on held-out SST-2 sentences (0.803 both, 64 per class, draws 108 to 110).
        pair_loss: ``cosine``: the cosine similarity of a pair regresses onto 1 (same label) or 0 (SetFit's loss);
            ``supcon``: batches of same-label pairs, every text pulled towards the batch's others of its label and
            pushed from the rest (:class:`SupConLoss`). On held-out SST-2 sentences the two tie: 0.737 ± 0.012
            against 0.742 ± 0.019 at 8 per class (5 draws), 0.791 ± 0.010 against 0.792 ± 0.003 at 64 (3 draws).
        temperature: the ``supcon`` softmax temperature.
        normalize: L2-normalise the embeddings the head reads (its first operation, saved with the model).
        head: ``logistic``: the linear head fitted as an L2-regularised logistic regression (scikit-learn's L-BFGS,
            SetFit's default head); ``linear``: trained by AdamW for the estimator's ``epochs`` at its ``lr``, as
            in feature extraction.
        head_c: inverse strength of the logistic head's L2 penalty (scikit-learn's ``C``).
        label_smoothing: cross-entropy label smoothing of a ``linear`` head.
        dropout: dropout on the embeddings before a ``linear`` head.
        label_prompts: train on sentences written from the class names as well (each template, ``prompt_repeats``
            times per class; SetFit's templated examples). ``None``: when every class name reads as a word
            (:func:`is_word_label`; a number or a letter is not); ``False``: never; ``True``: always. Single texts
            only: with text pairs they are left out (``True`` is refused there).
        templates: the prompts, each with one ``{}`` for the class name (underscores read as spaces); ``None``:
            :data:`TEMPLATES`.
        prompt_repeats: copies of each prompt per class (SetFit's ``sample_size`` is 2): 8 makes the prompts a
            larger share of the pairs. On held-out SST-2 sentences, 8 copies scored 0.800 ± 0.002 against
            0.792 ± 0.003 with 2 and 0.794 with 16 at 64 per class (the same 3 draws), and at 8 per class
            0.755 ± 0.026 against 0.741 ± 0.019 with 2, 0.747 with 4 and 0.753 with 16 (the same 5 draws; there
            more prompts also make more pairs: 4,608 instead of 1,440 with 2 copies).

    Example:
        >>> graft.TextClassifier("minilm", strategy=FewShot(pair_iterations=20))  # doctest: +SKIP
    """

    name: ClassVar[str] = "few-shot"
    tasks: ClassVar[tuple[str, ...]] = ("text-classification",)
    # the head's, as feature extraction's
    default_epochs: ClassVar[int] = 60
    default_lr: ClassVar[float] = 3e-3

    def __init__(
        self,
        *,
        pair_iterations: int | None = None,
        max_pairs: int | None = 8192,
        pair_epochs: int = 1,
        pair_batch_size: int = 16,
        pair_lr: float | None = None,
        pair_loss: str = "cosine",
        temperature: float = 0.1,
        normalize: bool = True,
        head: str = "logistic",
        head_c: float = 1.0,
        label_smoothing: float = 0.0,
        dropout: float = 0.0,
        label_prompts: bool | None = None,
        templates: list[str] | None = None,
        prompt_repeats: int = 8,
    ) -> None:
        self.pair_iterations = pair_iterations
        self.max_pairs = max_pairs
        self.pair_epochs = pair_epochs
        self.pair_batch_size = pair_batch_size
        self.pair_lr = pair_lr
        self.pair_loss = pair_loss
        self.temperature = temperature
        self.normalize = normalize
        self.head = head
        self.head_c = head_c
        self.label_smoothing = label_smoothing
        self.dropout = dropout
        self.label_prompts = label_prompts
        self.templates = templates
        self.prompt_repeats = prompt_repeats

    def validate(self) -> None:
        super().validate()
        for key in ("pair_iterations", "pair_epochs", "pair_batch_size"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ConfigError(f"FewShot {key} must be >= 1; got {getattr(self, key)}.")
        if self.max_pairs is not None and self.max_pairs < 2:
            raise ConfigError(f"FewShot max_pairs must be >= 2 (or None); got {self.max_pairs}.")
        if self.pair_lr is not None and not self.pair_lr > 0:
            raise ConfigError(f"FewShot pair_lr must be > 0; got {self.pair_lr}.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"FewShot dropout must be in [0, 1); got {self.dropout}.")
        if self.pair_loss not in PAIR_LOSSES:
            raise ConfigError(f"FewShot pair_loss must be one of {', '.join(PAIR_LOSSES)}; got '{self.pair_loss}'.")
        if not self.temperature > 0:
            raise ConfigError(f"FewShot temperature must be > 0; got {self.temperature}.")
        if self.head not in HEADS:
            raise ConfigError(f"FewShot head must be one of {', '.join(HEADS)}; got '{self.head}'.")
        if not self.head_c > 0:
            raise ConfigError(f"FewShot head_c must be > 0; got {self.head_c}.")
        if self.prompt_repeats < 1:
            raise ConfigError(f"FewShot prompt_repeats must be >= 1; got {self.prompt_repeats}.")
        templates = TEMPLATES if self.templates is None else self.templates
        bad = [t for t in templates if not isinstance(t, str) or t.count("{}") != 1]
        if isinstance(templates, str) or bad:
            raise ConfigError(
                f"FewShot templates are a list of prompts with one '{{}}' each, where the class name goes; got "
                f"{templates if isinstance(templates, str) else bad[0]!r}. "
                "E.g. templates=['This sentence is {}.']."
            )

    def prompt_examples(self, classes: Sequence[Any]) -> list[tuple[str, int]]:
        """The label prompts for these classes: ``(text, class index)``, every template ``prompt_repeats`` times
        per class; empty when ``label_prompts`` is ``False``, or ``None`` and a class name is not a word.

        Example:
            >>> FewShot(templates=["It is {}."], prompt_repeats=1).prompt_examples(["bad", "very_good"])
            [('It is bad.', 0), ('It is very good.', 1)]
            >>> FewShot().prompt_examples([0, 1])
            []
        """
        if self.label_prompts is False or (self.label_prompts is None and not all(map(is_word_label, classes))):
            return []
        names = [str(c).replace("_", " ").strip() for c in classes]
        templates, repeats = TEMPLATES if self.templates is None else self.templates, range(self.prompt_repeats)
        return [(t.format(n), i) for i, n in enumerate(names) for t in templates for _ in repeats]

    def plan(self) -> list[Phase]:
        pairs = PairPhase(
            self.name,
            iterations=self.pair_iterations,
            max_pairs=self.max_pairs,
            epochs=self.pair_epochs,
            batch_size=self.pair_batch_size,
            lr=self.pair_lr,
            labels=self.pair_loss == "supcon",
        )
        head = LogisticHeadPhase("head", c=self.head_c) if self.head == "logistic" else HeadPhase("head")
        return [pairs, head]

    def loss(self, model: nn.Module, batch: tuple[Any, torch.Tensor], criterion: Criterion) -> dict[str, torch.Tensor]:
        """One contrastive step on ``N`` pairs.

        Args:
            model: the encoder, inputs → embeddings ``(2N, F)``.
            batch: ``(inputs, target)``: the ``2N`` inputs (the pairs' first items, then their second items) and the
                target similarities ``(N,)`` (1 same label, 0 not); with ``supcon``, the pairs' labels.
            criterion: unused (the head's loss is the task's).

        Returns:
            ``{"loss": scalar, "cosine": (N,)}``.
        """
        inputs, target = batch
        u, v = model(inputs).chunk(2)
        if self.pair_loss == "supcon":
            loss = SupConLoss(self.temperature)(torch.cat([u, v]), torch.cat([target, target]))
        else:
            loss = CosineSimilarityLoss()(u, v, target)
        return {"loss": loss, "cosine": F.cosine_similarity(u.detach().float(), v.detach().float(), dim=-1)}
