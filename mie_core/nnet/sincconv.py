"""SincNet front-end: a bank of learnable band-pass sinc filters (paper Sec. IV-A).

Each filter k is fully described by its low cut-off f1 and its band width f2 - f1
(Hz). Its impulse response (Ravanelli & Bengio 2018, the paper's SincNet) is

    g_k(n) = 2 f2 sinc(2 pi f2 n) - 2 f1 sinc(2 pi f1 n),   windowed by a Hamming window,

divided by 2 (f2 - f1) as SincNet and asteroid's ``ParamSincFB`` do (the centre tap
is 1; the pass-band gain is about sample_rate / (2 (f2 - f1)), so in the log features
each filter carries a constant offset that the network absorbs). Both cut-offs are kept physical:
f1 = min_low_hz + |a_k| and f2 = clamp(f1 + min_band_hz + |b_k|, max=Nyquist), with
a, b the learnable parameters (paper: min_low_hz = min_band_hz = 5 Hz).

Initialisations (Table III):
  * ``"cqt"``: one filter per MIDI note; filter k (1-based) spans MIDI k-1 .. k+1,
    f1 = 440 * 2**((k-1-69)/12), f2 = 440 * 2**((k+1-69)/12). 122 filters (other
    counts: the same range, equally spaced in log frequency, :func:`cqt_bands`).
  * ``"mel"``: n filters equally spaced on the mel scale (2595 log10(1 + f/700))
    between ``mel_min_hz`` and Nyquist, adjacent bands (as SincNet).

Output features. A strided real band-pass convolution samples an oscillation, so its
values at a 12 ms hop are close to random phases of the band's signal. We take the
magnitude of the *analytic* band-pass output instead: the in-phase filter g_k above
and its quadrature (Hilbert) pair (cos(2 pi f1 n) - cos(2 pi f2 n)) / (pi n), with the
same window and the same magnitude response, give the band's amplitude envelope
|y_k(t)|, a smooth quantity that survives decimation. Features are
log(|y| + 1e-4): (batch, n_filters, frames), frames = ceil(samples / hop).
``quadrature=False`` gives the plain SincNet behaviour (log of the rectified
real output) for comparison.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from mie_core.data.gm import hz_to_midi, midi_to_hz, note_name  # noqa: F401  (pitch in MIDI notes; the Filter bands page imports them here)


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def cqt_bands(n_filters: int = 122) -> np.ndarray:
    """(n, 2) initial (f1, f2) in Hz of the musical-scale bank.

    With the paper's 122 filters, filter k (1-based) spans MIDI k-1 .. k+1: one filter
    per MIDI note. Other counts keep the same range (MIDI 0 .. 123) with the filters
    equally spaced in log frequency, s = 122 / n semitones apart and 2 s wide.
    """
    k = np.arange(1, n_filters + 1, dtype=np.float64)
    s = 122.0 / n_filters
    return np.stack([midi_to_hz((k - 1) * s), midi_to_hz((k + 1) * s)], axis=1)


def mel_bands(n_filters: int, sample_rate: int = 16000, mel_min_hz: float = 30.0, margin_hz: float = 10.0) -> np.ndarray:
    """(n, 2) initial (f1, f2) in Hz: adjacent bands equally spaced on the mel scale."""
    edges = mel_to_hz(np.linspace(hz_to_mel(mel_min_hz), hz_to_mel(sample_rate / 2 - margin_hz), n_filters + 1))
    return np.stack([edges[:-1], edges[1:]], axis=1)


class SincConv(nn.Module):
    """Learnable sinc band-pass filterbank (see the module docstring).

    Args:
        n_filters: number of band-pass filters (122 = one per MIDI note for CQT).
        init: ``"cqt"`` or ``"mel"``.
        sample_rate: Hz.
        kernel_ms: filter length; rounded to an odd number of taps (50 ms -> 801).
        hop_ms: stride (12 ms -> 192 samples at 16 kHz).
        min_low_hz, min_band_hz: floors of f1 and f2 - f1 (paper: 5 Hz each).
        learnable: train the cut-offs ("updated" in Table III) or keep them frozen.
        mel_min_hz: lowest edge of the mel initialisation.
        quadrature: envelope of the analytic output (default) or rectified real output.

    Shapes: forward (batch, samples) float -> (batch, n_filters, ceil(samples / hop)).

    >>> import torch
    >>> bank = SincConv(122, "cqt")  # one filter per MIDI note, 50-ms kernels, 12-ms hop
    >>> bank(torch.zeros(2, 16000)).shape  # one second at 16 kHz
    torch.Size([2, 122, 84])
    """

    def __init__(
        self,
        n_filters: int = 122,
        init: str = "cqt",
        sample_rate: int = 16000,
        kernel_ms: float = 50.0,
        hop_ms: float = 12.0,
        min_low_hz: float = 5.0,
        min_band_hz: float = 5.0,
        learnable: bool = True,
        mel_min_hz: float = 30.0,
        quadrature: bool = True,
    ):
        super().__init__()
        if init not in ("cqt", "mel"):
            raise ValueError(f"init must be 'cqt' or 'mel', not {init!r}")
        if n_filters < 1:
            raise ValueError("n_filters must be positive")
        self.n_filters = int(n_filters)
        self.init = init
        self.sample_rate = int(sample_rate)
        taps = int(round(kernel_ms * sample_rate / 1000.0))
        self.kernel_size = taps if taps % 2 == 1 else taps + 1
        self.hop = max(1, int(round(hop_ms * sample_rate / 1000.0)))
        self.min_low_hz = float(min_low_hz)
        self.min_band_hz = float(min_band_hz)
        self.learnable = bool(learnable)
        self.quadrature = bool(quadrature)

        bands = cqt_bands(n_filters) if init == "cqt" else mel_bands(n_filters, sample_rate, mel_min_hz)
        nyq = sample_rate / 2.0
        low = np.clip(bands[:, 0], min_low_hz, nyq - min_band_hz)
        width = np.clip(bands[:, 1], None, nyq) - low
        a = torch.tensor(low - min_low_hz, dtype=torch.float32)
        b = torch.tensor(np.maximum(width - min_band_hz, 0.0), dtype=torch.float32)
        self.low_hz_ = nn.Parameter(a, requires_grad=self.learnable)
        self.band_hz_ = nn.Parameter(b, requires_grad=self.learnable)
        self.register_buffer("init_bands", torch.tensor(np.stack([low, low + np.maximum(width, min_band_hz)], 1), dtype=torch.float32))

        half = (self.kernel_size - 1) // 2
        n = torch.arange(-half, half + 1, dtype=torch.float64) / sample_rate  # seconds
        window = torch.hamming_window(self.kernel_size, periodic=False, dtype=torch.float64)
        self.register_buffer("t_", n.float())
        self.register_buffer("window_", window.float())
        self._cached: torch.Tensor | None = None
        self._cached_version: tuple | None = None

    def cutoffs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Current (f1, f2) in Hz, each (n_filters,)."""
        low = self.min_low_hz + self.low_hz_.abs()
        high = torch.clamp(low + self.min_band_hz + self.band_hz_.abs(), self.min_low_hz, self.sample_rate / 2)
        return low, high

    def bands(self) -> np.ndarray:
        """Current (low, high) cut-offs in Hz, a (n_filters, 2) float64 array."""
        low, high = self.cutoffs()
        return torch.stack([low, high], 1).detach().cpu().double().numpy()

    def filters(self) -> torch.Tensor:
        """Impulse responses, (n_filters * (2 if quadrature else 1), 1, kernel_size) float32.

        Rows [0, n) are the in-phase filters g_k, rows [n, 2n) their quadrature pairs.
        Each is divided by 2 (f2 - f1) (centre tap 1), as in SincNet.
        """
        low, high = self.cutoffs()
        low = low[:, None].float()
        high = high[:, None].float()
        t = self.t_[None, :]
        two_pi_t = 2 * math.pi * t
        band = (high - low)
        # in-phase: 2 f2 sinc(2 pi f2 t) - 2 f1 sinc(2 pi f1 t); torch.sinc(x) = sin(pi x)/(pi x)
        g = 2 * high * torch.sinc(2 * high * t) - 2 * low * torch.sinc(2 * low * t)
        g = g * self.window_[None, :] / (2 * band)
        if not self.quadrature:
            return g[:, None, :]
        safe_t = torch.where(t == 0, torch.ones_like(t), t)
        q = (torch.cos(two_pi_t * low) - torch.cos(two_pi_t * high)) / (math.pi * safe_t)
        q = torch.where(t == 0, torch.zeros_like(q), q) * self.window_[None, :] / (2 * band)
        return torch.cat([g, q], 0)[:, None, :]

    def _filters_cached(self) -> torch.Tensor:
        if self.training or torch.is_grad_enabled() and self.learnable:
            self._cached = None
            return self.filters()
        version = (self.low_hz_._version, self.band_hz_._version, self.low_hz_.data_ptr(), self.low_hz_.device)
        if self._cached is None or self._cached_version != version:
            with torch.no_grad():
                self._cached = self.filters()
            self._cached_version = version
        return self._cached

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(batch, samples) waveform -> (batch, n_filters, frames) log band envelope."""
        if x.dim() == 3:
            x = x.squeeze(1)
        x = x.float()
        filt = self._filters_cached()
        pad = (self.kernel_size - 1) // 2
        y = F.conv1d(x[:, None, :], filt, stride=self.hop, padding=pad)
        if self.quadrature:
            y_i, y_q = y[:, : self.n_filters], y[:, self.n_filters :]
            mag = torch.sqrt(y_i * y_i + y_q * y_q + 1e-12)
        else:
            mag = y.abs()
        return torch.log(mag + 1e-4)

    def n_frames(self, n_samples: int) -> int:
        return (n_samples + 2 * ((self.kernel_size - 1) // 2) - self.kernel_size) // self.hop + 1

    def extra_repr(self) -> str:
        return (f"n_filters={self.n_filters}, init={self.init!r}, kernel_size={self.kernel_size}, hop={self.hop}, "
                f"learnable={self.learnable}, quadrature={self.quadrature}")


def frequency_response(filters: np.ndarray, sample_rate: int = 16000, n_fft: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude responses in dB of impulse responses (n, taps): returns (freqs_hz (f,), db (n, f))."""
    h = np.fft.rfft(np.asarray(filters, dtype=np.float64), n=n_fft, axis=-1)
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    return freqs, 20.0 * np.log10(np.maximum(np.abs(h), 1e-10))


def band_response(sinc: SincConv, index: list[int] | np.ndarray, n_fft: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """Frequency responses (dB) of chosen filters of ``sinc`` (in-phase filters)."""
    with torch.no_grad():
        g = sinc.filters()[: sinc.n_filters, 0].cpu().double().numpy()
    return frequency_response(g[np.asarray(index)], sinc.sample_rate, n_fft)
