"""CLIP image/text encoders behind one factory, open_clip style.

``create_clip(spec)`` accepts:

* ``"compact"`` — the catalog-trained compact CLIP saved in ``artifacts_dir``
  (see :mod:`engine.encoders.compact_clip`);
* ``"MODEL/PRETRAINED"`` — an open_clip pretrained tag such as ``"ViT-B-32/laion2b_s34b_b79k"``,
  used only when its weights are already in the local cache (nothing is ever downloaded);
* ``"MODEL@/path/to/ckpt.pt"`` (``.pt``, ``.pth``, ``.bin`` or ``.safetensors``) — a local
  checkpoint of an open_clip architecture, loaded through the same open_clip call as pretrained
  weights (``pretrained=<file>``, ``weights_only=True``: never unpickles arbitrary objects).

Weights that are not available raise :class:`ClipUnavailable` with one clear line;
``create_clip_with_fallback`` turns that into the compact model plus the message.
Every encoder returns L2-normalised float32 rows, images and texts in one shared space.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from engine import runtime  # noqa: F401  (offline env before open_clip/transformers are imported)
from engine.encoders.base import quiet_loading, register_encoder
from engine.encoders.clip_base import (
    CHECKPOINT_SUFFIXES,
    COMPACT,
    FALLBACK_NOTE,
    ClipEncoder,
    ClipUnavailable,
)

CLIP_SPEC_FILE = "clip_spec.json"


def list_clip_models() -> list[str]:
    """Specs accepted by :func:`create_clip` (besides ``"MODEL@/path/to/checkpoint"``)."""
    import open_clip

    return [COMPACT, *(f"{m}/{t}" for m, t in open_clip.list_pretrained())]


def _valid_choices() -> str:
    return (
        f"valid: {COMPACT!r}, 'MODEL/PRETRAINED' (an open_clip pretrained tag, e.g. "
        "'ViT-B-32/laion2b_s34b_b79k'; see list_clip_models()) or 'MODEL@/path/to/checkpoint"
        f"{{{','.join(CHECKPOINT_SUFFIXES)}}}'"
    )


def _cached_pretrained(model: str, tag: str) -> str | None:
    """The local file of an open_clip pretrained tag if it is cached, without any network call."""
    import open_clip
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    cfg = open_clip.get_pretrained_cfg(model, tag)
    if cfg.get("file"):
        return cfg["file"] if os.path.isfile(cfg["file"]) else None
    if cfg.get("hf_hub"):
        from huggingface_hub import try_to_load_from_cache

        repo, filename = os.path.split(cfg["hf_hub"])
        filename = filename or HF_WEIGHTS_NAME
        names = [HF_SAFE_WEIGHTS_NAME] if filename == HF_WEIGHTS_NAME else []
        if filename.endswith((".bin", ".pth")):
            names.append(filename[:-4] + ".safetensors")
        for name in [*names, filename]:
            hit = try_to_load_from_cache(repo, name)
            if isinstance(hit, str) and os.path.isfile(hit):
                return hit
    if cfg.get("url"):
        path = os.path.join(os.path.expanduser("~/.cache/clip"), os.path.basename(cfg["url"]))
        return path if os.path.isfile(path) else None
    return None


def _first_line(err: BaseException, limit: int = 160) -> str:
    text = str(err).strip().splitlines()
    line = f"{type(err).__name__}: {text[0] if text else ''}"
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _open_clip_encoder(name: str, model_name: str, pretrained: str, what: str) -> ClipEncoder:
    """Create an open_clip model with ``pretrained`` (tag or file); failures -> ClipUnavailable."""
    import open_clip

    try:
        with quiet_loading():
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=pretrained, weights_only=True, device="cpu"
            )
            tokenizer = open_clip.get_tokenizer(model_name)
    except Exception as err:  # any loading failure means "not usable offline"
        raise ClipUnavailable(f"{what} could not be loaded offline ({_first_line(err)})") from err
    cfg = open_clip.get_model_config(model_name) or {}
    dim = int(cfg.get("embed_dim") or model.encode_text(tokenizer(["x"])).shape[-1])
    return ClipEncoder(name, model, preprocess, tokenizer, dim)


@register_encoder("clip", ("text", "image"), "CLIP: images and texts in one space")
def create_clip(
    spec: str = COMPACT, *, artifacts_dir: Path | None = None, text_encoder=None
) -> ClipEncoder:
    """Create a CLIP encoder from a spec (see the module docstring)."""
    import open_clip

    spec = str(spec).strip()
    if spec == COMPACT:
        if artifacts_dir is None:
            raise ValueError("create_clip('compact') needs artifacts_dir (the build's folder)")
        from engine.encoders.compact_clip import load_compact_clip

        return load_compact_clip(Path(artifacts_dir), text_encoder)
    if "@" in spec:
        model_name, _, path = spec.partition("@")
        if model_name not in open_clip.list_models():
            raise ValueError(
                f"unknown open_clip model {model_name!r} in CLIP spec {spec!r}; "
                f"valid models: {', '.join(open_clip.list_models())}"
            )
        if not path.lower().endswith(CHECKPOINT_SUFFIXES):
            raise ValueError(f"CLIP checkpoint {path!r} must end with {CHECKPOINT_SUFFIXES}")
        if not os.path.isfile(path):
            raise ClipUnavailable(f"CLIP checkpoint {path} for {model_name} does not exist")
        return _open_clip_encoder(spec, model_name, path, f"CLIP checkpoint {path} ({model_name})")
    if spec.lower().endswith(CHECKPOINT_SUFFIXES):
        raise ValueError(f"a CLIP checkpoint needs its open_clip model name: 'MODEL@{spec}'")
    model_name, slash, tag = spec.partition("/")
    if slash and model_name in open_clip.list_models():
        if not open_clip.get_pretrained_cfg(model_name, tag):
            tags = open_clip.list_pretrained_tags_by_model(model_name)
            raise ValueError(
                f"unknown pretrained tag {tag!r} for {model_name}; valid: {', '.join(tags) or '-'}"
            )
        if _cached_pretrained(model_name, tag) is None:
            raise ClipUnavailable(
                f"pretrained CLIP {spec} is not available offline (not in the local cache)"
            )
        return _open_clip_encoder(spec, model_name, tag, f"pretrained CLIP {spec}")
    raise ValueError(f"unknown CLIP spec {spec!r}; {_valid_choices()}")


def create_clip_with_fallback(
    spec: str, artifacts_dir: Path | None
) -> tuple[ClipEncoder, str | None]:
    """``create_clip(spec)``, or the compact model plus a one-line note when it is unavailable."""
    try:
        return create_clip(spec, artifacts_dir=artifacts_dir), None
    except ClipUnavailable as err:
        if spec == COMPACT:
            raise
        return create_clip(COMPACT, artifacts_dir=artifacts_dir), f"{err}; {FALLBACK_NOTE}"


def load_clip_step(clip_dir: Path, text_encoder=None) -> ClipEncoder:
    """The CLIP encoder a build's clip step chose (its spec is recorded next to its weights).

    The compact CLIP's text side is the catalog's SBERT encoder: pass the one already loaded.
    """
    spec = json.loads((Path(clip_dir) / CLIP_SPEC_FILE).read_text())["spec"]
    return create_clip(spec, artifacts_dir=clip_dir, text_encoder=text_encoder)
