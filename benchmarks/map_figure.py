"""The server's part of drawing a map: the figure as the pages build it vs every column as an object array.

    python benchmarks/map_figure.py            # the shipped test notes (7,090) and t-SNE maps

What a recolouring or the Mel vs CQT maps tab costs the server: ``figures.paired_maps`` (two
panels of every test note) and then what ``st.plotly_chart`` does with it
(``plotly.tools.return_figure_from_figure_or_data`` and ``plotly.io.to_json``). The
baseline builds the same traces with the note's metadata in ``customdata`` as one object
array per trace (row, note, family, source, style, pitch, velocity, preset), as the pages
did before; ours sends row, pitch and velocity as one int32 block and two ASCII strings
per note (``figures.point_data``). Both are timed in alternation in one process; the script
prints both times, the bytes sent to the browser and the ratio. The browser's part is
measured by ``tests/test_browser.py``.
"""
from __future__ import annotations

import argparse

import numpy as np

import _common  # noqa: F401  (puts the repository on sys.path)


def main():
    import plotly.graph_objects as go
    import plotly.io
    import plotly.tools
    import streamlit  # noqa: F401

    from mie_core.service import workbench
    from pages.common import figures

    cache = workbench.Cache()
    meta = cache.notes("test")
    coords = [np.load(cache.root / "maps" / f"{m}_test_tsne.npy") for m in ("mel122", "cqt122")]
    idx = np.arange(len(meta))
    columns = ["note_str", "instrument_family_str", "instrument_source_str", "playing_style", "pitch", "velocity",
               "preset_name"]

    def object_traces(c, first):
        cmap = figures.colour_map(meta["instrument_family_str"])
        out = []
        for cat, grp in meta.groupby("instrument_family_str", sort=True):
            rows = grp.index.to_numpy()
            cd = np.column_stack([rows, meta.iloc[rows][columns].to_numpy()])
            out.append(go.Scattergl(x=c[rows, 0], y=c[rows, 1], mode="markers", name=cat, legendgroup=cat,
                                    showlegend=first, customdata=cd, marker=dict(size=6, color=cmap[cat]),
                                    hovertemplate="%{customdata[1]}<br>%{customdata[2]}<br>pitch %{customdata[5]}"))
        return out

    def baseline():
        from plotly.subplots import make_subplots

        fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.02)
        for k, c in enumerate(coords):
            for tr in object_traces(c, k == 0):
                fig.add_trace(tr, row=1, col=k + 1)
        return streamlit_part(fig)

    def ours():
        return streamlit_part(figures.paired_maps(coords, ["mel122", "cqt122"], meta, "family", idx))

    def streamlit_part(fig):
        return plotly.io.to_json(plotly.tools.return_figure_from_figure_or_data(fig, validate_figure=True),
                                 validate=False)

    size = {"object arrays (before)": len(baseline()), "figures.paired_maps": len(ours())}
    rate = _common.side_by_side({"object arrays (before)": baseline, "figures.paired_maps": ours},
                                {"object arrays (before)": 1, "figures.paired_maps": 1}, repeats=7)
    for k in rate:
        print(f"{k}: {1000 / rate[k]:.0f} ms, {size[k] / 1e6:.2f} MB to the browser")
    print(f"ratio: {rate['figures.paired_maps'] / rate['object arrays (before)']:.2f}x faster "
          f"({len(idx)} notes, two panels)")


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    main()
