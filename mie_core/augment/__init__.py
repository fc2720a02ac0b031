"""Augmentation: the paper's trim-and-concatenate notes and crops (:mod:`.concat`), and the
recording chain (:mod:`.chain`).
"""
