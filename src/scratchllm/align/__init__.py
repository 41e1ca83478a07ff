"""Alignment of a fine-tuned run on preferences: DPO and its variants (dpo.py, dpo_run.py), a
Bradley–Terry reward model (reward.py), building preference pairs from samples (pairs.py, ranked
by a reward model, a judge or a rule file: rules.py) and constitutional AI (constitution.py,
constitution_run.py). Preference files are read one layer down, in data/preference.py.

>>> from scratchllm.align.dpo import LOSS_TYPES
>>> LOSS_TYPES
('sigmoid', 'ipo', 'hinge')
"""
