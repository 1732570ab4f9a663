"""Data plumbing shared by training phases: multi-task samplers and masked-LM raw text/batches."""
