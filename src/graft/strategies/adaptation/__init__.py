"""Building blocks of unsupervised domain adaptation: losses on a labelled source and an unlabelled target batch.

Each is a plain ``nn.Module`` (or function) with documented tensor shapes, citing its paper; a strategy's step
combines them with the source classification loss. ``f_s``/``f_t`` are source/target features ``(N, F)``,
``g_s``/``g_t`` source/target logits ``(N, C)``.

* :class:`DomainAdversarialLoss`: DANN, adversarial through a gradient reversal layer (Ganin & Lempitsky 2015)
* :class:`ConditionalDomainAdversarialLoss`: CDAN(+E), conditioned on the predictions (Long et al. 2018)
* :class:`MultipleKernelMaximumMeanDiscrepancy`, :func:`mk_mmd`: DAN's MK-MMD (Long et al. 2015)
* :class:`CorrelationAlignmentLoss`: Deep CORAL (Sun & Saenko 2016)
* :class:`MinimumClassConfusionLoss`: MCC on target logits (Jin et al. 2020)
* :class:`EntropyMinimizationLoss`, :func:`entropy`: target entropy (Grandvalet & Bengio 2004)
* :func:`pseudo_label_loss`, :class:`ConfidenceThresholdPseudoLabels`: FixMatch-style self-training (Sohn et al. 2020),
  with :class:`DistributionAlignment` (Berthelot et al. 2020) and a :class:`LinearRampUp` of its weight (Lee 2013)
* :func:`adapt_batchnorm`: AdaBN, target BatchNorm statistics (Li et al. 2016)
* :func:`a_distance`, :func:`domain_density_ratio`: domain gap and importance weights (Ben-David et al. 2007;
  Sugiyama et al. 2007; You et al. 2019)
"""

from __future__ import annotations

from .adabn import AdaBN, SourceOnly, adapt_batchnorm, batchnorm_layers
from .base import AdaptationModel, AdaptationStrategy
from .cdan import CDAN, ConditionalDomainAdversarialLoss, MultiLinearMap, RandomizedMultiLinearMap
from .coral import CORAL, CorrelationAlignmentLoss, covariance
from .dann import DANN, DomainAdversarialLoss, DomainDiscriminator, domain_bce
from .diagnostics import a_distance, domain_density_ratio
from .entropy import EntropyMinimizationLoss, entropy, entropy_of_probs, entropy_weights
from .grl import GradientReverseFunction, GradientReverseLayer, WarmStartGradientReverseLayer, grad_reverse
from .mcc import MCC, MinimumClassConfusionLoss
from .mmd import DAN, GaussianKernel, MultipleKernelMaximumMeanDiscrepancy, mk_mmd, squared_distances
from .self_training import (
    ConfidenceThresholdPseudoLabels,
    DistributionAlignment,
    LinearRampUp,
    SelfTraining,
    pseudo_label_loss,
)

__all__ = [
    "AdaBN",
    "AdaptationModel",
    "AdaptationStrategy",
    "CDAN",
    "CORAL",
    "DAN",
    "DANN",
    "MCC",
    "SelfTraining",
    "SourceOnly",
    "ConditionalDomainAdversarialLoss",
    "ConfidenceThresholdPseudoLabels",
    "CorrelationAlignmentLoss",
    "DistributionAlignment",
    "DomainAdversarialLoss",
    "DomainDiscriminator",
    "EntropyMinimizationLoss",
    "GaussianKernel",
    "GradientReverseFunction",
    "GradientReverseLayer",
    "LinearRampUp",
    "MinimumClassConfusionLoss",
    "MultiLinearMap",
    "MultipleKernelMaximumMeanDiscrepancy",
    "RandomizedMultiLinearMap",
    "WarmStartGradientReverseLayer",
    "a_distance",
    "adapt_batchnorm",
    "batchnorm_layers",
    "covariance",
    "domain_bce",
    "domain_density_ratio",
    "entropy",
    "entropy_of_probs",
    "entropy_weights",
    "grad_reverse",
    "mk_mmd",
    "pseudo_label_loss",
    "squared_distances",
]
