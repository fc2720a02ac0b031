"""Exploring the space: 2-D maps (t-SNE, UMAP, PCA) and probing classifiers.
"""
