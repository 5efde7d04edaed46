"""Episodic datasets, meta-training and evaluation."""
