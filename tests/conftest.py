import os

# Tests never touch the network: the hub code paths are exercised on fixtures in the hub's layout.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
