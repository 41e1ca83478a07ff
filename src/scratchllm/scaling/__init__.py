"""Scaling laws on the user's own runs: IsoFLOP sweeps, Chinchilla fits, compute-optimal sizing.

laws.py holds the law and its optimum, fit.py the two fitting approaches, sweep.py the runs that
make the points, analyze.py/plots.py the fit's files, plan.py the answer for a budget.

>>> from scratchllm.scaling.laws import BESIROGLU
>>> n, d = BESIROGLU.optimal(1e21)
>>> round(d / n)                                        # tokens per parameter at 1e21 FLOPs
22
"""
