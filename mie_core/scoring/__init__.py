"""Scoring trials as speaker verification does: the back-end (centring, AS-norm, calibration),
fusion, the trial protocol, metrics, and leave-one-source-out fitting on real notes.
"""
