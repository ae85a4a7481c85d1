"""Learning to rank: candidate features and the LightGBM LambdaMART re-ranker."""
