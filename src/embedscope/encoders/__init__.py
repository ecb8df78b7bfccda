"""Networks that turn patches into vectors: MiLoPYP's SimSiam encoders, their training and inference.

The modules import torch; nothing outside `encoders/` and the embedding step needs to.
"""
