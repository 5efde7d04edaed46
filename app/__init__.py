"""fewshot-label: few-shot image labeling with meta-learned models."""
__version__ = "0.2.0"
