"""Training runs: loss, learning rate, throughput and validation EER from the runs' logs."""
import json

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from mie_core.service import workbench
from pages.common import ui


@st.cache_data(ttl=20, show_spinner=False)
def read_log(path: str, mtime: float) -> pd.DataFrame:
    rows = []
    with open(path) as f:
        for line in f:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line being written right now
    return pd.DataFrame(rows)


def line_figure(frames: dict, event: str, column: str, title: str, scale: float = 1.0, log_y: bool = False,
                log_x: bool = False) -> go.Figure:
    fig = go.Figure()
    colours = ui.figures.run_colours(list(frames))
    for name, df in frames.items():
        sub = df[df.get("event") == event] if "event" in df else df.iloc[:0]
        if column in sub and not sub.empty:
            fig.add_trace(go.Scatter(x=sub["step"], y=sub[column] * scale, mode="lines+markers" if event == "valid" else "lines",
                                     name=name, line=dict(color=colours[name])))
    fig.update_layout(title=title, height=320, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title="step (log scale)" if log_x else "step")
    if log_y:
        fig.update_yaxes(type="log")
    if log_x:
        fig.update_xaxes(type="log")
    return fig


with ui.guard():
    ui.page_setup("Training runs")
    # runs trained on this machine, then the logs of the runs that made the shipped models
    logs = sorted(workbench.runs_dir().glob("*/log.jsonl")) + sorted(workbench.runs_dir().glob("study/*/log.jsonl"))
    names = [p.parent.name if p.parent.parent == workbench.runs_dir() else f"study/{p.parent.name}" for p in logs]
    for p in sorted((workbench.cache_dir() / "logs").glob("*.jsonl")):
        names.append(f"{p.stem} (shipped)")
        logs.append(p)
    if not logs:
        st.info("No training run on this machine yet (runs/*/log.jsonl). Start one with "
                "`python -m training.train --config training/configs/cqt122.yaml`.")
        st.stop()
    chosen = st.multiselect("Runs", names, default=names[:4], key=ui.kept("runs_chosen"))
    frames = {n: read_log(str(p), p.stat().st_mtime) for n, p in zip(names, logs) if n in chosen}
    for n, df in frames.items():
        if df.empty:
            continue
        last = df[df["event"] == "train"].tail(1)
        valid = df[df["event"] == "valid"]
        done = not df[df["event"] == "done"].empty
        msg = f"**{n}**: step {int(last['step'].iloc[0]) if not last.empty else 0}"
        if not valid.empty:
            best = valid.loc[valid["eer"].idxmin()]
            msg += f", best validation EER {100 * best['eer']:.2f} % at step {int(best['step'])}"
        st.markdown(msg + (" (finished)" if done else ""))
    last_steps = [int(df["step"].max()) for df in frames.values() if "step" in df and df["step"].notna().any()]
    uneven = len(last_steps) > 1 and max(last_steps) > 4 * max(1, min(last_steps))
    log_x = st.toggle("Steps on a log scale", uneven, key=ui.kept("runs_logx"),
                      help="On by default when the runs' lengths differ fourfold or more, so a short run is not "
                           "squeezed into the left edge.")
    c1, c2 = st.columns(2)
    c1.plotly_chart(line_figure(frames, "train", "loss", "training loss", log_x=log_x), key="loss")
    c2.plotly_chart(line_figure(frames, "valid", "eer", "validation EER (%)", 100, log_x=log_x), key="eer")
    c1.plotly_chart(line_figure(frames, "train", "lr", "learning rate", log_y=True, log_x=log_x), key="lr")
    c2.plotly_chart(line_figure(frames, "train", "clips_per_s", "throughput (clips/s)", log_x=log_x), key="cps")
    if frames:
        ui.download_csv(pd.concat([df.assign(run=n) for n, df in frames.items()], ignore_index=True),
                        "training_logs.csv", "Download logs (CSV)", key="dl_logs")
