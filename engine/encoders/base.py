"""One interface per modality, and the encoder registry.

A text encoder has ``encode_texts``, an image encoder ``encode_images``; both return one
L2-normalised float32 row per input, so an inner product is a cosine. CLIP is both. Each encoder
module registers a factory with :func:`register_encoder`; ``create_encoder(name, **kwargs)`` is
the one way to build any of them, and an unknown name lists the valid choices.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from engine.registry import Registry

if TYPE_CHECKING:
    from PIL import Image


@runtime_checkable
class TextEncoder(Protocol):
    """Texts -> L2-normalised float32 rows."""

    name: str
    dim: int

    def encode_texts(self, texts: list[str], *, batch_size: int = 64) -> np.ndarray: ...


@runtime_checkable
class ImageEncoder(Protocol):
    """RGB images -> L2-normalised float32 rows."""

    name: str
    dim: int

    def encode_images(self, images: list[Image.Image], *, batch_size: int = 64) -> np.ndarray: ...


def distinct_longest_first(texts: list[str]) -> tuple[list[str], np.ndarray]:
    """Each distinct text once, longest first (ties by text), and the row of every input text
    among them: ``vectors_of(distinct)[rows]`` are the inputs' vectors in their own order.

    Batches cut from the distinct texts pad to similar lengths, so less work is wasted on padding,
    and a text that occurs twice is encoded once.
    """
    distinct = sorted(set(texts), key=lambda t: (-len(t), t))
    row_of = {t: i for i, t in enumerate(distinct)}
    return distinct, np.fromiter((row_of[t] for t in texts), dtype=np.int64, count=len(texts))


@dataclass(frozen=True)
class EncoderSpec:
    """A registered encoder: its name, the modalities it encodes and its factory."""

    name: str
    modalities: tuple[str, ...]
    description: str
    factory: Callable[..., Any]


ENCODERS: Registry[EncoderSpec] = Registry("encoder", "engine.encoders")


def register_encoder(
    name: str, modalities: tuple[str, ...], description: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator for an encoder factory (a class or a function returning an encoder)."""

    def wrap(factory: Callable[..., Any]) -> Callable[..., Any]:
        ENCODERS.register(EncoderSpec(name, tuple(modalities), description, factory))
        return factory

    return wrap


def list_encoders(modality: str | None = None) -> list[str]:
    """Registered encoder names, optionally only those that encode ``modality``."""
    return [s.name for s in ENCODERS if modality is None or modality in s.modalities]


def create_encoder(name: str, *, modality: str | None = None, **kwargs: Any) -> Any:
    """Create the encoder registered as ``name`` (refusing one that cannot encode ``modality``)."""
    spec = ENCODERS.get(name)
    if modality is not None and modality not in spec.modalities:
        raise ValueError(
            f"encoder {name!r} does not encode {modality}; valid: "
            f"{', '.join(list_encoders(modality))}"
        )
    return spec.factory(**kwargs)


@contextlib.contextmanager
def quiet_loading() -> Iterator[None]:
    """Silence open_clip's and transformers' load warnings and progress bars for a moment."""
    import transformers

    tlog = transformers.utils.logging
    verbosity, bars = tlog.get_verbosity(), tlog.is_progress_bar_enabled()
    previous_disable = logging.root.manager.disable
    tlog.set_verbosity_error()
    tlog.disable_progress_bar()
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous_disable)
        tlog.set_verbosity(verbosity)
        if bars:
            tlog.enable_progress_bar()
