"""Encoders: text (Sentence-BERT), image/text (CLIP), colour features and fusion."""
