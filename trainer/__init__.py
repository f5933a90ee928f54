"""Thresher's FSDP trainer (the `[train]` extra): shard loader, Llama-style model, training loop,
distributed checkpoints. Imports torch and, for the shard format only, ``transforms.shards``."""
