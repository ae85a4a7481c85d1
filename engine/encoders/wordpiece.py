"""MiniLM's word-piece tokenizer without transformers.

The model folder's ``tokenizer.json`` is the same fast tokenizer ``transformers.AutoTokenizer``
wraps; reading it with the ``tokenizers`` library directly gives the same ids and pieces while
keeping transformers (and the torch it brings, ~650 MB resident) out of a serving process.
The file's own fixed padding and truncation (128 tokens) are replaced by what
sentence-transformers does: pad to the longest text of a batch, truncate at the model's
``max_seq_length``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np

TOKENIZER_FILE = "tokenizer.json"


def max_seq_length(model_dir: Path) -> int:
    """The sentence-transformers sequence limit of ``model_dir`` (its own config, else 256)."""
    cfg = Path(model_dir) / "sentence_bert_config.json"
    if cfg.is_file():
        return int(json.loads(cfg.read_text()).get("max_seq_length", 256))
    return 256


class WordPieces:
    """A BERT word-piece tokenizer from ``tokenizer.json``: batches of ids and masks for the
    encoder, and the pieces of one word."""

    def __init__(self, model_dir: Path):
        from tokenizers import Tokenizer

        path = Path(model_dir) / TOKENIZER_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{model_dir} has no {TOKENIZER_FILE}")
        self.max_len = max_seq_length(model_dir)
        self._batch = Tokenizer.from_file(str(path))
        self._batch.enable_truncation(max_length=self.max_len)
        pad = self._batch.padding or {}
        self._batch.enable_padding(pad_id=int(pad.get("pad_id", 0)),
                                   pad_token=str(pad.get("pad_token", "[PAD]")))
        self._plain = Tokenizer.from_file(str(path))
        self._plain.no_truncation()
        self._plain.no_padding()

    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        """``input_ids`` and ``attention_mask`` (int64, padded to the longest text)."""
        enc = self._batch.encode_batch([str(t) for t in texts])
        return {"input_ids": np.array([e.ids for e in enc], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in enc], dtype=np.int64)}

    def pieces(self, word: str) -> list[str]:
        """The word pieces of ``word`` without special tokens (``##`` marks a continuation)."""
        return list(self._plain.encode(str(word), add_special_tokens=False).tokens)


@lru_cache(maxsize=4)
def word_pieces(model_dir: str | None = None) -> WordPieces:
    """The shared tokenizer of ``model_dir`` (default: the packaged all-MiniLM-L6-v2)."""
    from engine.encoders.text import minilm_path

    return WordPieces(Path(model_dir) if model_dir else minilm_path())
