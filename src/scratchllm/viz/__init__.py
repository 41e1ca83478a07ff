"""Visual explanations of a trained run: what the model reads, where it looks, what it predicts and why.

The analysis modules (introspect, logit_lens, saliency, embeddings, inference_steps) turn a
model and token ids into plain tensors and dicts; the drawing modules (figures, pages, the
`draw_*` functions) turn those into PNG and self-contained HTML; playground.py serves them live.

>>> import scratchllm.viz
"""
