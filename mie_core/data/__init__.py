"""Data and audio: reading audio, SoundFonts and their checks, rendering notes, the corpus and
its splits, labels, pitch, and the loaders of NSynth, RWC and real recordings.
"""
