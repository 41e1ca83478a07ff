"""Alignment: preference optimisation of a fine-tuned run (DPO and its variants).

>>> from scratchllm.align.dpo import LOSS_TYPES
>>> LOSS_TYPES
('sigmoid', 'ipo', 'hinge')
"""
