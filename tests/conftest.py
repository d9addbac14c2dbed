"""Shared fixtures: an isolated embedding cache, a tiny random backbone and tiny learnable data sets.

Every test runs offline and writes only under pytest's ``tmp_path``. The tiny model is timm's
``test_efficientnet`` (~100k parameters, random weights) at ``image_size=32``.
"""

from __future__ import annotations

import os

# Two cores shared with other work: intra-op threads that spin-wait make a 100k-parameter convnet 100x slower.
# Set before torch is imported anywhere in the test process.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

TINY_BACKBONE = "test_efficientnet"

#: base colour per class index (red, blue, green); images are these plus Gaussian noise
CLASS_COLORS: tuple[tuple[int, int, int], ...] = ((210, 40, 40), (40, 50, 210), (40, 200, 60))
CLASS_NAMES: tuple[str, ...] = ("red", "blue", "green")


# ------------------------------------------------------------------------------------------------------
# environment
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _offline_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Session-wide: a private cache folder (also for module-scoped fixtures), no hub access, one thread."""
    import torch

    torch.set_num_threads(int(os.environ.get("GRAFT_TEST_THREADS", "1")))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GRAFT_CACHE_DIR", str(tmp_path_factory.mktemp("graft-cache-session")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


@pytest.fixture
def count_embeddings(monkeypatch: pytest.MonkeyPatch) -> Callable[[type], list[int]]:
    """``count_embeddings(EstimatorClass)`` → a list that records, per backbone embedding call of that class,
    how many inputs went through the backbone (cache misses)."""

    def install(cls: type) -> list[int]:
        calls: list[int] = []
        real = cls._embed_uncached  # type: ignore[attr-defined]

        def counting(self: Any, data: Any, todo: list[int]) -> Any:
            calls.append(len(todo))
            return real(self, data, todo)

        monkeypatch.setattr(cls, "_embed_uncached", counting)
        return calls

    return install


@pytest.fixture(autouse=True)
def graft_cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own empty embedding cache: nothing is written to ``~/.cache``."""
    cache = tmp_path / "graft-cache"
    monkeypatch.setenv("GRAFT_CACHE_DIR", str(cache))
    return cache


# ------------------------------------------------------------------------------------------------------
# tiny data
# ------------------------------------------------------------------------------------------------------


def color_image(
    cls: int, rng: np.random.Generator, size: tuple[int, int] = (40, 30), noise: float = 25.0
) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 image: class colour plus noise. ``size`` is (width, height) as in PIL."""
    w, h = size
    base = np.asarray(CLASS_COLORS[cls], np.float32)
    return np.clip(base + rng.normal(0.0, noise, (h, w, 3)), 0, 255).astype(np.uint8)


def write_class_folder(
    root: Path,
    n_classes: int = 2,
    n_per_class: int = 6,
    *,
    ext: str = ".png",
    seed: int = 0,
    names: tuple[str, ...] = CLASS_NAMES,
) -> Path:
    """Write ``root/<class name>/img<i><ext>`` images with class-dependent colour; return ``root``."""
    rng = np.random.default_rng(seed)
    for c in range(n_classes):
        folder = root / names[c]
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n_per_class):
            Image.fromarray(color_image(c, rng)).save(folder / f"img{i}{ext}")
    return root


def color_arrays(n_per_class: int = 8, n_classes: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``X`` uint8 ``(N, 30, 40, 3)`` and integer labels ``y`` (classes interleaved)."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(n_classes), n_per_class)
    X = np.stack([color_image(int(c), rng) for c in y])
    return X, y


def gray_arrays(
    n_per_class: int = 8, n_classes: int = 2, seed: int = 0, size: int = 28
) -> tuple[np.ndarray, np.ndarray]:
    """``X`` uint8 ``(N, size, size)`` grayscale (class c has brightness 40 + 170 c / (n-1)) and int ``y``."""
    rng = np.random.default_rng(seed)
    y = np.tile(np.arange(n_classes), n_per_class)
    levels = 40.0 + 170.0 * y / max(1, n_classes - 1)
    X = np.clip(levels[:, None, None] + rng.normal(0.0, 20.0, (len(y), size, size)), 0, 255).astype(np.uint8)
    return X, y


@pytest.fixture
def image_folder(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``image_folder(name="data", n_classes=2, n_per_class=6, ext=".png", seed=0)``."""

    def make(name: str = "data", n_classes: int = 2, n_per_class: int = 6, ext: str = ".png", seed: int = 0) -> Path:
        return write_class_folder(tmp_path / name, n_classes, n_per_class, ext=ext, seed=seed)

    return make


@pytest.fixture
def arrays() -> tuple[np.ndarray, np.ndarray]:
    """16 colour images ``(16, 30, 40, 3)`` uint8 with int labels 0/1."""
    return color_arrays(8, 2)


# ------------------------------------------------------------------------------------------------------
# tiny model
# ------------------------------------------------------------------------------------------------------


def tiny_params(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments of a fast, deterministic-enough :class:`graft.ImageClassifier` on CPU."""
    params: dict[str, Any] = {
        "pretrained": False,
        "image_size": 32,
        "batch_size": 8,
        "epochs": 3,
        "augment": "none",
        "device": "cpu",
        "verbose": False,
    }
    params.update(overrides)
    return params


def tiny_classifier(strategy: Any = "feature-extraction", **overrides: Any) -> Any:
    import graft

    return graft.ImageClassifier(TINY_BACKBONE, strategy, **tiny_params(**overrides))


@pytest.fixture
def tiny() -> Callable[..., Any]:
    """Factory: ``tiny(strategy="feature-extraction", **params)`` → an unfitted tiny ImageClassifier."""
    return tiny_classifier


@pytest.fixture(scope="session")
def backbone_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A safetensors file with a fixed random state of the tiny backbone, for reproducible initialisation.

    Passing ``weights=`` makes the initial backbone known exactly (``pretrained=False`` alone draws it from
    the global RNG), so tests can compare weights before and after training bit for bit.
    """
    import torch
    from safetensors.torch import save_file

    from graft.backbones import create_backbone

    torch.manual_seed(1234)
    backbone = create_backbone(TINY_BACKBONE, pretrained=False)
    path = tmp_path_factory.mktemp("weights") / "tiny_backbone.safetensors"
    save_file({k: v.contiguous() for k, v in backbone.module.state_dict().items()}, str(path))
    return path


@pytest.fixture(scope="session")
def helpers() -> Any:
    """The data and model helpers of this module, for tests and module-scoped fixtures."""
    from types import SimpleNamespace

    return SimpleNamespace(
        color_image=color_image,
        color_arrays=color_arrays,
        gray_arrays=gray_arrays,
        write_class_folder=write_class_folder,
        tiny_params=tiny_params,
        tiny_classifier=tiny_classifier,
        class_names=CLASS_NAMES,
        backbone=TINY_BACKBONE,
    )


# ------------------------------------------------------------------------------------------------------
# text: tiny random transformers (MiniLM's tokenizer, offline) and tiny learnable text / token data
# ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def text_helpers() -> Any:
    """Tiny text models and data: ``bert``/``gpt2`` configs, ``sentiment``, ``tagged``, ``write_conll``, ``tiny``.

    The configs build random 2-layer transformers (32-d) with MiniLM's tokenizer (``backbone="minilm"``), so
    nothing is downloaded. ``tiny(kind, strategy, token=False, **params)`` returns an unfitted
    :class:`graft.TextClassifier` (or :class:`graft.TokenClassifier` with ``token=True``) on CPU.
    """
    from types import SimpleNamespace

    bert = {
        "model_type": "bert",
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "vocab_size": 30522,
    }
    gpt2 = {"model_type": "gpt2", "n_embd": 32, "n_layer": 2, "n_head": 2, "vocab_size": 30522, "n_positions": 256}
    positive = ("good", "great", "excellent", "wonderful", "happy", "love", "superb", "nice")
    negative = ("bad", "awful", "terrible", "horrible", "sad", "hate", "poor", "nasty")
    filler = ("the", "movie", "was", "really", "quite", "film", "plot", "acting", "story", "very")

    def sentiment(n: int = 40, seed: int = 0) -> tuple[list[str], list[str]]:
        """``n`` short sentences, alternately negative/positive: three filler words and one sentiment word."""
        rng = np.random.default_rng(seed)
        texts, labels = [], []
        for i in range(n):
            pos = i % 2 == 1
            words = [str(w) for w in rng.choice(filler, 3)] + [str(rng.choice(positive if pos else negative))]
            rng.shuffle(words)
            texts.append(" ".join(words))
            labels.append("pos" if pos else "neg")
        return texts, labels

    people = (("Angela", "Merkel"), ("John", "Smith"), ("Maria", "Garcia"), ("Pedro", "Lopez"))
    places = ("Paris", "Berlin", "London", "Madrid", "Rome", "Vienna")
    verbs = ("visited", "left", "saw", "loved")

    def tagged(n: int = 24, seed: int = 0) -> tuple[list[list[str]], list[list[str]]]:
        """``n`` sentences, alternately "<First> <Last> <verb> <Place> yesterday ." and
        "Yesterday <Place> welcomed <First> <Last> .", with IOB2 tags PER/LOC."""
        rng = np.random.default_rng(seed)
        sentences, tags = [], []
        for i in range(n):
            first, last = people[int(rng.integers(len(people)))]
            place, verb = places[int(rng.integers(len(places)))], verbs[int(rng.integers(len(verbs)))]
            if i % 2 == 0:
                sentences.append([first, last, verb, place, "yesterday", "."])
                tags.append(["B-PER", "I-PER", "O", "B-LOC", "O", "O"])
            else:
                sentences.append(["Yesterday", place, "welcomed", first, last, "."])
                tags.append(["O", "B-LOC", "O", "B-PER", "I-PER", "O"])
        return sentences, tags

    def write_conll(path: Path, sentences: list[list[str]], tags: list[list[str]], *, iob1: bool = True) -> Path:
        """A CoNLL-2003 style file (``token POS chunk tag``, -DOCSTART-); IOB1 tags (``I-`` starts entities)."""
        lines = ["-DOCSTART- -X- -X- O", ""]
        for words, seq in zip(sentences, tags):
            for w, t in zip(words, seq):
                if iob1 and t.startswith("B-"):
                    t = "I-" + t[2:]  # no two same-type entities touch here, so IOB1 has no B- at all
                lines.append(f"{w} NNP I-NP {t}")
            lines.append("")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path

    def tiny(kind: str = "bert", strategy: Any = "feature-extraction", *, token: bool = False, **params: Any) -> Any:
        import graft

        settings: dict[str, Any] = {
            "backbone_config": dict({"bert": bert, "gpt2": gpt2}[kind]),
            "max_length": 32,
            "batch_size": 8,
            "device": "cpu",
            "cache": False,
            "verbose": False,
        }
        settings.update(params)
        cls = graft.TokenClassifier if token else graft.TextClassifier
        return cls("minilm", strategy, **settings)

    return SimpleNamespace(
        bert=bert,
        gpt2=gpt2,
        sentiment=sentiment,
        tagged=tagged,
        write_conll=write_conll,
        tiny=tiny,
        people=people,
        places=places,
    )
