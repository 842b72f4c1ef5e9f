"""Compressed U-Net baseline (PyTorch), compared against the PCNN pipeline.

Not implemented yet: the networks, training, bundled weights and 8-bit
inference land with their own issue. Install with ``pip install pcnnseg[baseline]``.
"""
