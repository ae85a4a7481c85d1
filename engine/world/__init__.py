"""The synthetic catalog world: products, images, users, interactions and query sets."""
