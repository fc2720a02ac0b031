"""Evaluation: the parts models are scored on, the one embedding store, the paper's protocol
over several models, the MFCC baseline, reports, comparisons and their figures.
"""
