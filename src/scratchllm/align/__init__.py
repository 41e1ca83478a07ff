"""Alignment of a fine-tuned run on preferences: DPO and its variants (dpo.py, dpo_run.py), a
Bradley–Terry reward model (reward.py) and building preference pairs from samples (pairs.py).
Preference files are read one layer down, in data/preference.py.

>>> from scratchllm.align.dpo import LOSS_TYPES
>>> LOSS_TYPES
('sigmoid', 'ipo', 'hinge')
"""
