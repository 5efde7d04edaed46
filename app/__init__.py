"""fewshot-label: few-shot image labeling with meta-learned models."""
__version__ = "0.1.0"
