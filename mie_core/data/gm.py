"""General MIDI programs mapped to NSynth's labels: family, source and playing style.

NSynth (Engel et al. 2017) labels every instrument with one of 11 families and one of
3 sources. A SoundFont preset carries a General MIDI program number (0-127) and a
name, so our corpus labels each preset from this documented table. The table is the
single source of truth; the README shows it in words.

Choices worth knowing:
  * Sound effects (programs 120-127) are not instruments and are excluded, as are
    drum kits (bank 128).
  * NSynth has no "pad", "percussion" or "ensemble" family: synth pads and effects
    (88-103) are ``synth_lead``; tuned percussion (47, 112-119) is ``mallet``;
    ensembles keep the family of their members (strings, brass, vocal).
  * Free reeds (accordion, harmonica, bandoneon, bagpipe) are ``reed``; the reed
    organ and all other organs are ``organ``.
  * Plucked ethnic lutes (sitar, banjo, shamisen, koto) are ``guitar``; the harp
    and the fiddle are ``string``; celesta is ``keyboard``.

Playing style comes from the program (e.g. 45 Pizzicato Strings, 28 Muted Guitar,
36 Slap Bass) and is refined by words in the preset name (``Tremolo``, ``Pizzicato``,
``Fast``/``Slow`` attack, ``Mute``, ``Feedback``, ``12-String``); the default is
``normal``.
"""
from __future__ import annotations

import re

import numpy as np

FAMILIES = (
    "bass", "brass", "flute", "guitar", "keyboard", "mallet",
    "organ", "reed", "string", "synth_lead", "vocal",
)
SOURCES = ("acoustic", "electronic", "synthetic")
DRUM_BANK = 128
SFX_PROGRAMS = range(120, 128)

# program -> (family, source, style); programs not listed are excluded
_A, _E, _S = "acoustic", "electronic", "synthetic"
GM_TABLE: dict[int, tuple[str, str, str]] = {
    0: ("keyboard", _A, "normal"), 1: ("keyboard", _A, "bright"), 2: ("keyboard", _E, "normal"),
    3: ("keyboard", _A, "honky-tonk"), 4: ("keyboard", _E, "normal"), 5: ("keyboard", _E, "normal"),
    6: ("keyboard", _A, "plucked"), 7: ("keyboard", _E, "normal"),
    8: ("keyboard", _A, "normal"), 9: ("mallet", _A, "normal"), 10: ("mallet", _A, "normal"),
    11: ("mallet", _A, "normal"), 12: ("mallet", _A, "normal"), 13: ("mallet", _A, "normal"),
    14: ("mallet", _A, "normal"), 15: ("mallet", _A, "normal"),
    16: ("organ", _E, "normal"), 17: ("organ", _E, "percussive"), 18: ("organ", _E, "normal"),
    19: ("organ", _A, "normal"), 20: ("organ", _A, "normal"), 21: ("reed", _A, "normal"),
    22: ("reed", _A, "normal"), 23: ("reed", _A, "normal"),
    24: ("guitar", _A, "nylon"), 25: ("guitar", _A, "steel"), 26: ("guitar", _E, "clean"),
    27: ("guitar", _E, "clean"), 28: ("guitar", _E, "muted"), 29: ("guitar", _E, "overdriven"),
    30: ("guitar", _E, "distortion"), 31: ("guitar", _E, "harmonics"),
    32: ("bass", _A, "plucked"), 33: ("bass", _E, "finger"), 34: ("bass", _E, "pick"),
    35: ("bass", _E, "fretless"), 36: ("bass", _E, "slap"), 37: ("bass", _E, "slap"),
    38: ("bass", _S, "normal"), 39: ("bass", _S, "normal"),
    40: ("string", _A, "arco"), 41: ("string", _A, "arco"), 42: ("string", _A, "arco"),
    43: ("string", _A, "arco"), 44: ("string", _A, "tremolo"), 45: ("string", _A, "pizzicato"),
    46: ("string", _A, "plucked"), 47: ("mallet", _A, "normal"),
    48: ("string", _A, "ensemble"), 49: ("string", _A, "slow attack"), 50: ("string", _S, "ensemble"),
    51: ("string", _S, "ensemble"), 52: ("vocal", _A, "aah"), 53: ("vocal", _A, "ooh"),
    54: ("vocal", _S, "normal"), 55: ("string", _A, "hit"),
    56: ("brass", _A, "normal"), 57: ("brass", _A, "normal"), 58: ("brass", _A, "normal"),
    59: ("brass", _A, "muted"), 60: ("brass", _A, "normal"), 61: ("brass", _A, "ensemble"),
    62: ("brass", _S, "normal"), 63: ("brass", _S, "normal"),
    **{p: ("reed", _A, "normal") for p in range(64, 72)},
    **{p: ("flute", _A, "normal") for p in range(72, 80)},
    **{p: ("synth_lead", _S, "lead") for p in range(80, 88)},
    **{p: ("synth_lead", _S, "pad") for p in range(88, 96)},
    **{p: ("synth_lead", _S, "effect") for p in range(96, 104)},
    104: ("guitar", _A, "plucked"), 105: ("guitar", _A, "plucked"), 106: ("guitar", _A, "plucked"),
    107: ("guitar", _A, "plucked"), 108: ("mallet", _A, "normal"), 109: ("reed", _A, "normal"),
    110: ("string", _A, "arco"), 111: ("reed", _A, "normal"),
    **{p: ("mallet", _A, "normal") for p in range(112, 118)},
    118: ("mallet", _S, "normal"), 119: ("mallet", _A, "reverse"),
}

def midi_to_hz(m):
    """MIDI note number(s) -> Hz (A4 = 69 = 440 Hz, equal temperament); fractional notes allowed."""
    return 440.0 * 2.0 ** ((np.asarray(m, dtype=np.float64) - 69.0) / 12.0)


def hz_to_midi(f):
    """Hz -> fractional MIDI note number(s), the inverse of :func:`midi_to_hz`."""
    return 69.0 + 12.0 * np.log2(np.asarray(f, dtype=np.float64) / 440.0)


def note_name(midi: float) -> str:
    """'A4' for 69; rounds to the nearest note."""
    names = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"]
    m = int(round(float(midi)))
    return f"{names[m % 12]}{m // 12 - 1}"


# words in a preset name that name a playing style (checked in this order)
_NAME_STYLES: tuple[tuple[str, str], ...] = (
    (r"pizz", "pizzicato"), (r"trem", "tremolo"), (r"\bmute", "muted"), (r"slap", "slap"),
    (r"fretless", "fretless"), (r"harmonic", "harmonics"), (r"overdriv", "overdriven"),
    (r"distort", "distortion"), (r"feedback", "feedback"), (r"\bfast\b", "fast attack"),
    (r"\bslow\b", "slow attack"), (r"12.?string", "12-string"), (r"funk", "muted"),
)


def is_instrument(bank: int, program: int) -> bool:
    """True for melodic presets: not a drum kit, not a sound effect."""
    return bank != DRUM_BANK and program in GM_TABLE


def labels_for(program: int, preset_name: str = "") -> dict[str, object]:
    """NSynth-style labels of a preset.

    Returns a dict with ``instrument_family`` (index into :data:`FAMILIES`),
    ``instrument_family_str``, ``instrument_source``, ``instrument_source_str`` and
    ``playing_style``. Raises KeyError for programs that are not instruments.
    """
    family, source, style = GM_TABLE[program]
    name = preset_name.lower()
    for pattern, named in _NAME_STYLES:
        if re.search(pattern, name):
            style = named
            break
    return {
        "instrument_family": FAMILIES.index(family),
        "instrument_family_str": family,
        "instrument_source": SOURCES.index(source),
        "instrument_source_str": source,
        "playing_style": style,
    }


# the General MIDI level 1 program names (0-based program numbers)
GM_NAMES: tuple[str, ...] = (
    "Acoustic Grand Piano", "Bright Acoustic Piano", "Electric Grand Piano", "Honky-tonk Piano", "Electric Piano 1",
    "Electric Piano 2", "Harpsichord", "Clavinet", "Celesta", "Glockenspiel", "Music Box", "Vibraphone", "Marimba",
    "Xylophone", "Tubular Bells", "Dulcimer", "Drawbar Organ", "Percussive Organ", "Rock Organ", "Church Organ",
    "Reed Organ", "Accordion", "Harmonica", "Tango Accordion", "Acoustic Guitar (nylon)", "Acoustic Guitar (steel)",
    "Electric Guitar (jazz)", "Electric Guitar (clean)", "Electric Guitar (muted)", "Overdriven Guitar",
    "Distortion Guitar", "Guitar Harmonics", "Acoustic Bass", "Electric Bass (finger)", "Electric Bass (pick)",
    "Fretless Bass", "Slap Bass 1", "Slap Bass 2", "Synth Bass 1", "Synth Bass 2", "Violin", "Viola", "Cello",
    "Contrabass", "Tremolo Strings", "Pizzicato Strings", "Orchestral Harp", "Timpani", "String Ensemble 1",
    "String Ensemble 2", "Synth Strings 1", "Synth Strings 2", "Choir Aahs", "Voice Oohs", "Synth Voice",
    "Orchestra Hit", "Trumpet", "Trombone", "Tuba", "Muted Trumpet", "French Horn", "Brass Section", "Synth Brass 1",
    "Synth Brass 2", "Soprano Sax", "Alto Sax", "Tenor Sax", "Baritone Sax", "Oboe", "English Horn", "Bassoon",
    "Clarinet", "Piccolo", "Flute", "Recorder", "Pan Flute", "Blown Bottle", "Shakuhachi", "Whistle", "Ocarina",
    "Lead 1 (square)", "Lead 2 (sawtooth)", "Lead 3 (calliope)", "Lead 4 (chiff)", "Lead 5 (charang)",
    "Lead 6 (voice)", "Lead 7 (fifths)", "Lead 8 (bass + lead)", "Pad 1 (new age)", "Pad 2 (warm)",
    "Pad 3 (polysynth)", "Pad 4 (choir)", "Pad 5 (bowed)", "Pad 6 (metallic)", "Pad 7 (halo)", "Pad 8 (sweep)",
    "FX 1 (rain)", "FX 2 (soundtrack)", "FX 3 (crystal)", "FX 4 (atmosphere)", "FX 5 (brightness)",
    "FX 6 (goblins)", "FX 7 (echoes)", "FX 8 (sci-fi)", "Sitar", "Banjo", "Shamisen", "Koto", "Kalimba", "Bagpipe",
    "Fiddle", "Shanai", "Tinkle Bell", "Agogo", "Steel Drums", "Woodblock", "Taiko Drum", "Melodic Tom",
    "Synth Drum", "Reverse Cymbal", "Guitar Fret Noise", "Breath Noise", "Seashore", "Bird Tweet",
    "Telephone Ring", "Helicopter", "Applause", "Gunshot",
)
assert len(GM_NAMES) == 128


def program_name(program: int) -> str:
    """'Violin' for 40: the General MIDI name of a program (0-127)."""
    return GM_NAMES[int(program)]
