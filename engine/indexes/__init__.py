"""Indexes: lexical (BM25, TF-IDF) and vector (FAISS flat, HNSW, IVF)."""
