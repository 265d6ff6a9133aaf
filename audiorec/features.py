"""Feature front ends as ``torch.nn.Module``: log-mel spectrogram, MFCC and PCEN.

They are part of every model (the model owns its front end), so the same graph runs in training,
in recognition and in export to ONNX. The filter bank follows librosa's mel scale and Slaney
normalisation (as librosa and Whisper do), and the output equals ``torch.stft`` followed by
``librosa.filters.mel`` to within 2e-6 (tests/test_features.py).

Why the STFT is not ``torch.stft``: ONNX Runtime's ``STFT`` and ``DFT`` operators are naive
and took 0.8-0.9 ms per second of audio on one core, more than the whole CNN behind them. The
front end computes the windowed DFT with matrix multiplies instead, folded twice so that it does a
quarter of a plain DFT's multiply-adds (:func:`folded_power`): 0.27 ms per second of audio in
ONNX Runtime, against 0.50 ms for the windowed-DFT convolution it replaced (both one core,
``benchmarks/front_end_latency.py``). The DFT matrices and the mel filters are computed inside
the graph from index ranges and the band edges, so the exported file holds a few KB of
front-end constants instead of 0.9 MB, and ONNX Runtime folds them back to tensors once when it
loads the model (a DFT kernel made trainable by ``learnable_dft`` is a weight, and is stored).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import librosa
import numpy as np
import scipy.fft
import torch
from torch import nn
from torch.nn import functional as F

from audiorec.audio import SAMPLE_RATE

MAX_FRAMING_SLICES = 32
"""Most strided slices :func:`frame_signal` may take to cut frames (``win_length /
gcd(win_length, hop_length)``); beyond it the front ends use the DFT convolution, which needs none."""


def graph_constant(cache: dict, name: str, compute, like: torch.Tensor):
    """A table a front end computes from its settings (DFT matrices, filter banks).

    Inside ``torch.export`` it is ``compute()``, recorded as a computation, so the exported file
    stores no table (ONNX Runtime folds it back to a tensor when it loads the model); in eager
    mode it is computed once per device and dtype of ``like`` and kept in ``cache``, as plain
    tensors outside autograd.

    Parameters
    ----------
    cache : dict
        The module's own, keyed by ``(name, device, dtype)``; not part of its state dict.
    name : str
        Which table.
    compute : callable
        No arguments; returns a tensor or a tuple of tensors on ``like``'s device.
    like : torch.Tensor
        A tensor of the module (a buffer, or the input) giving the device and dtype.

    Returns
    -------
    torch.Tensor or tuple of torch.Tensor
        What ``compute()`` returns.
    """
    if torch.compiler.is_exporting():
        return compute()
    key = (name, like.device, like.dtype)
    if key not in cache:
        with torch.inference_mode(False), torch.no_grad():  # plain tensors, usable in training too
            cache[key] = compute()
    return cache[key]


def dft_angles(rows: torch.Tensor, columns: torch.Tensor, n_fft: int, dtype: torch.dtype) -> torch.Tensor:
    """The DFT's phase angles ``2 pi k n / n_fft`` in radians, for every pair of a row index and
    a column index (bins ``k`` and taps ``n``, in either role: the product is symmetric).

    The integer product is reduced modulo ``n_fft`` first, so float32 angles stay below ``2 pi``
    and exact however many taps a frame has.

    Parameters
    ----------
    rows, columns : torch.Tensor [shape=(n_rows,), (n_columns,)], integer
    n_fft : int > 0
    dtype : torch.dtype
        Of the result.

    Returns
    -------
    torch.Tensor [shape=(n_rows, n_columns)]
    """
    return torch.remainder(rows[:, None] * columns[None, :], n_fft).to(dtype) * (2 * math.pi / n_fft)


def frames_by_slices(win_length: int, hop_length: int) -> bool:
    """Whether :func:`frame_signal` cuts frames of ``win_length`` samples every ``hop_length``
    samples (both > 0) with at most :data:`MAX_FRAMING_SLICES` slices; raises nothing."""
    return win_length // math.gcd(win_length, hop_length) <= MAX_FRAMING_SLICES


def frame_signal(signal: torch.Tensor, win_length: int, hop_length: int) -> torch.Tensor:
    """Cut a signal into overlapping frames with a few strided slices.

    The signal is reshaped into chunks of ``g = gcd(win_length, hop_length)`` samples; frame
    ``t`` is chunks ``t h .. t h + w - 1`` for ``h = hop_length / g`` and ``w = win_length / g``,
    so ``w`` strided slices of the chunks, concatenated, hold every frame. In ONNX Runtime this
    is cheap; ``Tensor.unfold`` exports to a gather that is much slower.

    Parameters
    ----------
    signal : torch.Tensor [shape=(batch, n_samples)]
        At least ``win_length`` samples.
    win_length, hop_length : int > 0
        Frame length and hop in samples.

    Returns
    -------
    torch.Tensor [shape=(batch, 1 + (n_samples - win_length) // hop_length, win_length)]
        ``signal.unfold(1, win_length, hop_length)``.

    Raises
    ------
    RuntimeError
        From ``torch.cat``, for most signals shorter than ``win_length``; the length is not
        checked in Python, so that an exported graph keeps a dynamic length. The front ends
        pad their input by at least a window first, so they never pass one.
    """
    chunk, (batch, n_samples) = math.gcd(win_length, hop_length), signal.shape
    n_frames = 1 + (n_samples - win_length) // hop_length
    chunks = signal[:, : n_samples // chunk * chunk].reshape(batch, n_samples // chunk, chunk)
    step = hop_length // chunk
    return torch.cat([chunks[:, i: i + step * (n_frames - 1) + 1: step] for i in range(win_length // chunk)], dim=2)


def folded_dft_matrices(half_window: torch.Tensor, n_fft: int) -> tuple[torch.Tensor, ...]:
    """The matrices of :func:`folded_power`: a windowed DFT folded twice.

    For a frame ``x`` of ``2 c`` samples under a window symmetric about sample ``c``
    (``w[c + m] = w[c - m]`` and ``w[0] = 0``, as a periodic Hann window, or a shorter one
    centred in the frame), with the phase taken from the centre (a shift of phase that leaves
    the power unchanged), the DFT is ``X[k] = sum_m w[c + m] (cos(2 pi k m / n_fft) s[m] - i
    sin(2 pi k m / n_fft) d[m])`` over ``m = 0 .. c - 1``, with ``s[m] = x[c + m] + x[c - m]``
    and ``d[m] = x[c + m] - x[c - m]``. And since ``cos(2 pi (n_fft / 2 - k) m / n_fft) = (-1) **
    m cos(2 pi k m / n_fft)`` (the sine likewise up to sign), bins ``k`` and ``n_fft / 2 - k``
    share the sums over even and over odd ``m``: their sum gives one bin, their difference the
    other. So a frame takes ``2 c (n_fft // 4 + 1)`` multiply-adds, a quarter of the plain
    windowed DFT's ``2 * 2 c (n_fft // 2 + 1)``.

    Parameters
    ----------
    half_window : torch.Tensor [shape=(c,)]
        ``w[c + m]`` for ``m = 0 .. c - 1``.
    n_fft : int
        FFT size, a multiple of 4 and at least ``2 c``.

    Returns
    -------
    cos_even, cos_odd, sin_even, sin_odd : torch.Tensor
        ``w[c + m] cos(2 pi k m / n_fft)`` (halved at ``m = 0``, where ``s[0] = 2 x[c]``) and
        ``w[c + m] sin(2 pi k m / n_fft)`` for ``k = 0 .. n_fft // 4``, the rows of the even
        ``m`` and of the odd, shapes ``(len(range(0, c, 2)), n_fft // 4 + 1)`` and
        ``(len(range(1, c, 2)), n_fft // 4 + 1)``.

    References
    ----------
    Oppenheim & Schafer, "Discrete-Time Signal Processing" (3rd ed. 2010), chapter 8: the
    symmetry properties of the DFT that both folds use.
    """
    taps = torch.arange(len(half_window), device=half_window.device)
    bins = torch.arange(n_fft // 4 + 1, device=half_window.device)
    angle = dft_angles(taps, bins, n_fft, half_window.dtype)  # (c, n_fft // 4 + 1)
    halve_first = ((taps > 0).to(half_window.dtype) + 1) / 2  # s[0] = 2 x[c]
    weight = (half_window * halve_first).unsqueeze(1)
    cos, sin = torch.cos(angle) * weight, torch.sin(angle) * weight
    return cos[0::2], cos[1::2], sin[0::2], sin[1::2]


def folded_power(frames: torch.Tensor, matrices: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Power spectrum of frames by the folded DFT (:func:`folded_dft_matrices`).

    Parameters
    ----------
    frames : torch.Tensor [shape=(batch, n_frames, 2 c)]
    matrices : the four tensors of :func:`folded_dft_matrices` for this ``c``

    Returns
    -------
    torch.Tensor [shape=(batch, n_frames, 2 * (n_fft // 4 + 1))]
        ``|X[k]|^2`` for bins ``k = 0 .. K`` (``K = n_fft // 4``), then for bins ``n_fft / 2 - k``,
        ``k = 0 .. K`` (bin ``K`` twice): the order :func:`fold_bins` puts a filter bank in.
    """
    centre = frames.shape[-1] // 2
    right, left = frames[..., centre:], frames[..., 1: centre + 1].flip(-1)  # x[c + m], x[c - m]
    total, difference = right + left, right - left
    cos_even, cos_odd, sin_even, sin_odd = matrices
    real_even, real_odd = total[..., 0::2] @ cos_even, total[..., 1::2] @ cos_odd
    imag_even, imag_odd = difference[..., 0::2] @ sin_even, difference[..., 1::2] @ sin_odd
    real = torch.cat([real_even + real_odd, real_even - real_odd], dim=-1)
    imag = torch.cat([imag_even + imag_odd, imag_even - imag_odd], dim=-1)
    return real * real + imag * imag


def fold_bins(basis: torch.Tensor) -> torch.Tensor:
    """A filter bank over the bins of a one-sided spectrum, in :func:`folded_power`'s order.

    Parameters
    ----------
    basis : torch.Tensor [shape=(n_fft // 2 + 1, n_filters)]

    Returns
    -------
    torch.Tensor [shape=(2 * (n_fft // 4 + 1), n_filters)]
        Rows ``0 .. K`` of ``basis`` (``K = n_fft // 4``), then rows ``n_fft / 2 - k`` for ``k =
        0 .. K - 1``, then a zero row (bin ``K``, already counted).
    """
    half = basis.shape[0] - 1  # n_fft / 2
    quarter = half // 2
    upper = basis[half - torch.arange(quarter, device=basis.device)]
    return torch.cat([basis[: quarter + 1], upper, torch.zeros_like(basis[:1])], dim=0)


@dataclass
class FeatureConfig:
    """Front-end parameters, in the units their names say.

    Attributes
    ----------
    kind : {"log_mel", "mfcc", "pcen", "speech_embedding"}
        ``pcen`` is :class:`PCEN` on the same mel bands, in place of the log.
        ``speech_embedding`` is Google's pretrained speech embedding (Lin et al. 2020), frozen
        unless ``finetune_layers`` says otherwise:
        96 values every 80 ms from its own 32-band mel front end, which ignores the window, hop
        and band settings here (:class:`audiorec.pretrained.SpeechEmbedding`); it goes with
        ``model.name=speech_embedding``.
    sample_rate : int
        Hz of the input waveform.
    win_ms : float
        Analysis window (Hann) length in milliseconds.
    hop_ms : float
        Hop between frames in milliseconds.
    n_mels : int
        Mel bands.
    n_mfcc : int
        Cepstral coefficients kept when ``kind == "mfcc"``.
    f_min_hz, f_max_hz : float
        Lowest and highest mel band edge in Hz; ``f_max_hz <= 0`` means the Nyquist frequency.
    top_db : float
        Dynamic range kept below each clip's loudest cell, in dB; quieter cells are raised to
        that floor (librosa's ``power_to_db(top_db=...)``, Whisper's 80 dB clamp). 0 keeps all.
    learnable_dft : bool
        The DFT kernel of the STFT convolution becomes a trained parameter, initialised at the
        windowed DFT (a learned front end on the raw waveform, as in Sainath et al. 2015); it adds
        ``2 * (n_fft // 2 + 1) * win_length`` weights (205.6 k at 25 ms and 16 kHz) to the model
        and to its exported file. The ``crnn_fourier`` model is the one documented with it.
    pcen_time_constant_s : float
        With ``kind == "pcen"``: the seconds its smoother averages over.
    pcen_trainable : bool
        With ``kind == "pcen"``: learn its gain, bias and power per band.
    finetune_layers : int
        With ``kind == "speech_embedding"``: how many of its last convolutions are fine-tuned
        (0, the default, keeps it frozen); their weights then count as trained parameters and
        learn at ``train.lr * train.finetune_lr_scale``.
    """

    kind: str = "log_mel"
    sample_rate: int = SAMPLE_RATE
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_mels: int = 40
    n_mfcc: int = 20
    f_min_hz: float = 20.0
    f_max_hz: float = 0.0
    top_db: float = 40.0
    learnable_dft: bool = False
    pcen_time_constant_s: float = 0.4
    pcen_trainable: bool = False
    finetune_layers: int = 0


class LogMel(nn.Module):
    """Log-mel spectrogram: natural log of mel-filtered STFT power.

    Parameters
    ----------
    sample_rate : int > 0
        Hz.
    win_ms, hop_ms : float > 0
        Window and hop in milliseconds; the FFT size is the next power of two above the window.
    n_mels : int > 0
    f_min_hz, f_max_hz : float
        Band edges in Hz; ``f_max_hz <= 0`` means ``sample_rate / 2``.
    floor : float > 0
        Added to the power before the log, so silence maps to ``log(floor)``, not ``-inf``.
    top_db : float >= 0
        Keep this many dB below each clip's maximum and raise anything quieter to that level, so
        recordings with different noise floors look alike; 0 turns the clamp off.
    learnable_dft : bool
        Make the DFT kernel a parameter, ``learned_dft``, initialised at :meth:`dft_kernel`'s
        windowed DFT, so training can adapt the filters to the task; the mel filters, the power
        and the log stay fixed. Off, the kernel is computed, not stored.

    Attributes
    ----------
    folded : bool
        Whether :meth:`mel_power` computes the STFT by the twice-folded DFT (an even window
        length, at most :data:`MAX_FRAMING_SLICES` framing slices, no learned kernel) or by the
        windowed-DFT convolution; both give the same power to float32 rounding, so setting it
        to False (as ``benchmarks/front_end_latency.py`` does) only changes the speed.

    Shape
    -----
    input : (batch, n_samples) float waveform at ``sample_rate``
    output : (batch, n_mels, n_frames) with ``n_frames = 1 + n_samples // hop_length``
        (frames are centred, the signal reflect-padded by ``n_fft // 2``)

    Raises
    ------
    ValueError
        A parameter is out of range (non-positive window or hop, hop longer than the window,
        band edges not in 0 <= f_min < f_max <= sample_rate / 2).

    References
    ----------
    Davis & Mermelstein 1980; librosa.feature.melspectrogram and librosa.power_to_db.
    Sainath, Weiss, Senior, Wilson & Vinyals 2015, "Learning the Speech Front-end with Raw
    Waveform CLDNNs", Interspeech 2015 (a front end trained from the waveform; ``learnable_dft``).
    """

    def __init__(
        self,
        sample_rate: int = SAMPLE_RATE,
        win_ms: float = 25.0,
        hop_ms: float = 10.0,
        n_mels: int = 40,
        f_min_hz: float = 20.0,
        f_max_hz: float = 0.0,
        floor: float = 1e-6,
        top_db: float = 80.0,
        learnable_dft: bool = False,
    ):
        super().__init__()
        if win_ms <= 0 or hop_ms <= 0 or hop_ms > win_ms:
            raise ValueError(f"need 0 < hop_ms <= win_ms, got win_ms={win_ms}, hop_ms={hop_ms}")
        f_max_hz = f_max_hz if f_max_hz > 0 else sample_rate / 2
        if not 0 <= f_min_hz < f_max_hz <= sample_rate / 2:
            raise ValueError(
                f"need 0 <= f_min_hz < f_max_hz <= {sample_rate / 2} Hz, got {f_min_hz}, {f_max_hz}"
            )
        if n_mels <= 0:
            raise ValueError(f"n_mels must be positive, got {n_mels}")
        self.sample_rate = sample_rate
        self.win_length = round(sample_rate * win_ms / 1000)
        self.hop_length = round(sample_rate * hop_ms / 1000)
        self.n_fft = 1 << (self.win_length - 1).bit_length()
        self.n_mels = n_mels
        self.floor = floor
        if top_db < 0:
            raise ValueError(f"top_db must be >= 0, got {top_db}")
        self.top_nats = top_db * math.log(10) / 10  # dB of power -> natural-log units
        self.register_buffer("window", torch.hann_window(self.win_length), persistent=False)
        band_edges = librosa.mel_frequencies(n_mels + 2, fmin=f_min_hz, fmax=f_max_hz)  # Hz, Slaney mel scale
        self.register_buffer("band_edges_hz", torch.from_numpy(band_edges.astype(np.float32)), persistent=False)
        # torch.stft centres a short window in the FFT frame; the convolution starts at the window.
        self.window_offset = (self.n_fft - self.win_length) // 2
        self.pad_left = self.n_fft // 2 - self.window_offset
        self.pad_right = self.win_length - self.pad_left  # so that n_frames = 1 + n_samples // hop_length
        self._constants: dict = {}  # (name, device, dtype) -> tensor, see _constant
        self.learned_dft = nn.Parameter(self._compute_dft_kernel()) if learnable_dft else None
        # The folded DFT needs a window symmetric about a whole sample (even length) and frames
        # cut by a few strided slices (see frame_signal); otherwise, or with a learned kernel, the
        # windowed-DFT convolution computes the same spectrum.
        self.folded = (not learnable_dft and self.win_length % 2 == 0 and self.n_fft % 4 == 0
                       and frames_by_slices(self.win_length, self.hop_length))

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for ``n_samples`` input samples."""
        return 1 + n_samples // self.hop_length

    def dft_kernel(self) -> torch.Tensor:
        """Windowed DFT basis as a convolution kernel.

        Returns
        -------
        torch.Tensor [shape=(2 * (n_fft // 2 + 1), 1, win_length)]
            Real parts (cosines) of bins 0..n_fft/2, then imaginary parts (negative sines), each
            multiplied by the Hann window; row ``k`` at tap ``n`` is
            ``w[n] * exp(-2j pi k (n + offset) / n_fft)``, the window sitting where ``torch.stft``
            centres it in the FFT frame. Computed once per device in eager mode; inside
            ``torch.export`` it is computed in the graph, so an exported model stores no kernel.
            With ``learnable_dft`` it is the parameter ``learned_dft`` instead, in eager mode
            and in export (where it is stored).
        """
        if self.learned_dft is not None:
            return self.learned_dft
        return self._constant("dft_kernel", self._compute_dft_kernel)

    def _constant(self, name: str, compute):
        return graph_constant(self._constants, name, compute, self.window)

    def _compute_dft_kernel(self) -> torch.Tensor:
        device = self.window.device
        taps = torch.arange(self.window_offset, self.window_offset + self.win_length, device=device)
        bins = torch.arange(self.n_fft // 2 + 1, device=device)
        angle = dft_angles(bins, taps, self.n_fft, self.window.dtype)  # (n_bins, win_length)
        return torch.cat([torch.cos(angle), -torch.sin(angle)], dim=0).mul(self.window).unsqueeze(1)

    def folded_dft(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """:func:`folded_dft_matrices` of this front end's Hann window and FFT size (even window
        lengths), computed once per device (in the graph when exporting)."""
        centre = self.win_length // 2
        return self._constant("folded_dft", lambda: folded_dft_matrices(self.window[centre:], self.n_fft))

    def mel_basis(self) -> torch.Tensor:
        """Triangular mel filters with Slaney area normalisation, as ``librosa.filters.mel``.

        Returns
        -------
        torch.Tensor [shape=(n_mels, n_fft // 2 + 1)]
            Filter ``m`` rises from band edge ``m`` to ``m + 1`` and falls to ``m + 2`` (edges in
            :attr:`band_edges_hz`), scaled by ``2 / (edge[m + 2] - edge[m])``.

        References
        ----------
        Slaney 1998, Auditory Toolbox (Technical Report 1998-010), the ``MelFilterBank`` layout
        librosa implements.
        """
        edges = self.band_edges_hz
        bin_hz = torch.arange(self.n_fft // 2 + 1, device=edges.device).to(edges.dtype) * (self.sample_rate / self.n_fft)
        widths = edges[1:] - edges[:-1]
        ramps = edges[:, None] - bin_hz[None, :]
        rising = -ramps[:-2] / widths[:-1, None]
        falling = ramps[2:] / widths[1:, None]
        triangles = torch.clamp(torch.minimum(rising, falling), min=0.0)
        return triangles * (2.0 / (edges[2:] - edges[:-2]))[:, None]

    def mel_power(self, waveform: torch.Tensor) -> torch.Tensor:
        """Mel filterbank energies before the log.

        When :attr:`folded` (an even window length, a few framing slices, no learned kernel), the
        frames (:func:`frame_signal`) go through the folded DFT (:func:`folded_power`):
        ``win_length * (n_fft // 4 + 1)`` multiply-adds a frame, a quarter of the windowed-DFT
        convolution's ``2 * win_length * (n_fft // 2 + 1)``, which computes it otherwise. The
        two agree to float32 rounding (tests).

        Parameters
        ----------
        waveform : torch.Tensor [shape=(batch, n_samples)]
            More than ``n_fft // 2`` samples (the reflect padding needs them).

        Returns
        -------
        torch.Tensor [shape=(batch, n_mels, n_frames)]
            ``mel_basis() @ |STFT|^2`` of the waveform as given (power in the waveform's squared
            units per band).
        """
        padded = F.pad(waveform.unsqueeze(1), (self.pad_left, self.pad_right), mode="reflect")
        if not self.folded:
            spec = F.conv1d(padded, self.dft_kernel(), stride=self.hop_length)  # (batch, 2 * n_bins, n_frames)
            real, imag = spec.chunk(2, dim=1)
            power = real * real + imag * imag  # (batch, n_fft // 2 + 1, n_frames)
            return torch.matmul(self.mel_basis(), power)
        frames = frame_signal(padded.squeeze(1), self.win_length, self.hop_length)  # (batch, n_frames, win_length)
        power = folded_power(frames, self.folded_dft())  # (batch, n_frames, 2 * (n_fft // 4 + 1))
        mel = self._constant("folded_mel_basis", lambda: fold_bins(self.mel_basis().T))
        return torch.matmul(power, mel).transpose(1, 2)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        log_mel = torch.log(self.mel_power(waveform) + self.floor)
        if self.top_nats > 0:
            peak = log_mel.amax(dim=(-2, -1), keepdim=True)
            log_mel = torch.maximum(log_mel, peak - self.top_nats)
        return log_mel


class MFCC(nn.Module):
    """Mel-frequency cepstral coefficients: DCT-II (orthonormal) of the log-mel spectrogram.

    Parameters
    ----------
    n_mfcc : int, 0 < n_mfcc <= n_mels
    **log_mel : keyword arguments of :class:`LogMel`

    Shape
    -----
    input : (batch, n_samples)
    output : (batch, n_mfcc, n_frames)

    References
    ----------
    Davis & Mermelstein 1980; librosa.feature.mfcc (``dct_type=2, norm="ortho"``).
    """

    def __init__(self, n_mfcc: int = 20, **log_mel):
        super().__init__()
        self.log_mel = LogMel(**log_mel)
        if not 0 < n_mfcc <= self.log_mel.n_mels:
            raise ValueError(f"need 0 < n_mfcc <= n_mels={self.log_mel.n_mels}, got {n_mfcc}")
        dct = scipy.fft.dct(np.eye(self.log_mel.n_mels), type=2, norm="ortho", axis=0)[:n_mfcc]
        self.register_buffer("dct", torch.from_numpy(np.asarray(dct, np.float32)), persistent=False)

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for ``n_samples`` input samples."""
        return self.log_mel.n_frames(n_samples)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        return torch.matmul(self.dct, self.log_mel(waveform))


class PCEN(nn.Module):
    """Per-channel energy normalisation (PCEN) of mel filterbank energies.

    ``PCEN[f, t] = (E[f, t] / (eps + M[f, t]) ** gain + bias) ** power - bias ** power`` with
    ``M[f, t] = (1 - s) M[f, t - 1] + s E[f, t]``: an automatic gain control per band (division
    by a smoothed energy, so a steady background and the overall loudness drop out) followed by a
    root compression in place of the log. ``E`` is the mel power of the waveform scaled to 32-bit
    integer range (times ``2 ** 31``), the scale the published constants were set for.

    The smoother ``M`` is an exponential moving average computed as a causal convolution with
    its impulse response ``s (1 - s) ** k``, truncated where it falls below 1e-4 of its sum and
    renormalised, on energies padded on the left with the first frame. So ``M`` starts at the
    first frame's energy (``librosa.pcen``'s default starts from a steady input of 1, which at
    this scale makes every clip's first frames loud), and the graph exports to ONNX without a
    loop. The output equals ``librosa.pcen(E, b=s, zi=lfilter_zi * E[..., :1])`` to float32
    precision (tests/test_features.py).

    Parameters
    ----------
    time_constant_s : float > 0
        Seconds the smoother averages over; ``s`` follows librosa's
        ``(sqrt(1 + 4 T**2) - 1) / (2 T**2)`` with ``T`` the time constant in frames
        (0.4 s at a 10 ms hop gives ``s = 0.0247``).
    gain : float in (0, 1]
        ``alpha``, how fully the gain control divides by ``M``.
    bias : float > 0
        ``delta``.
    power : float in (0, 1]
        ``r``, the root compression.
    eps : float > 0
        Keeps the division finite in digital silence.
    trainable : bool
        Learn ``gain``, ``bias`` and ``power`` per band (stored as logarithms, so they stay
        positive), initialised at the values above, as Wang et al. do; the smoother stays fixed.
    **log_mel : keyword arguments of :class:`LogMel` (``top_db`` and ``floor`` are unused).

    Shape
    -----
    input : (batch, n_samples)
    output : (batch, n_mels, n_frames), non-negative

    Raises
    ------
    ValueError
        A parameter out of its range, or a bad :class:`LogMel` argument.

    References
    ----------
    Wang, Getreuer, Hughes, Lyon & Saurous 2017, "Trainable Frontend for Robust and Far-Field
    Keyword Spotting", ICASSP 2017 (the defaults: gain 0.98, bias 2, power 0.5, eps 1e-6);
    ``librosa.pcen`` (the time constant and the scale of the input).
    """

    def __init__(self, time_constant_s: float = 0.4, gain: float = 0.98, bias: float = 2.0, power: float = 0.5,
                 eps: float = 1e-6, trainable: bool = False, **log_mel):
        super().__init__()
        self.log_mel = LogMel(**log_mel)
        for name, value, ok in [("time_constant_s", time_constant_s, time_constant_s > 0), ("gain", gain, 0 < gain <= 1),
                                ("bias", bias, bias > 0), ("power", power, 0 < power <= 1), ("eps", eps, eps > 0)]:
            if not ok:
                raise ValueError(f"PCEN {name}={value} is out of range")
        frames = time_constant_s * self.log_mel.sample_rate / self.log_mel.hop_length
        self.smoothing = (math.sqrt(1 + 4 * frames**2) - 1) / (2 * frames**2)
        self.n_taps = math.ceil(math.log(1e-4) / math.log(1 - self.smoothing))
        self.eps = eps
        logs = torch.log(torch.tensor([gain, bias, power])).repeat(self.log_mel.n_mels, 1)  # (n_mels, 3)
        if trainable:
            self.log_params = nn.Parameter(logs)
        else:
            self.register_buffer("log_params", logs)

    def n_frames(self, n_samples: int) -> int:
        """Frames produced for ``n_samples`` input samples."""
        return self.log_mel.n_frames(n_samples)

    def smoother_kernel(self, device=None, dtype=torch.float32) -> torch.Tensor:
        """The smoother's impulse response as a convolution kernel.

        Returns
        -------
        torch.Tensor [shape=(1, 1, n_taps)]
            ``s (1 - s) ** k`` for ``k = n_taps - 1 .. 0`` (oldest frame first), divided by its
            sum.
        """
        k = torch.arange(self.n_taps - 1, -1, -1, device=device).to(dtype)
        taps = torch.exp(k * math.log(1 - self.smoothing))
        return (taps / taps.sum()).view(1, 1, -1)

    def forward(self, waveform: torch.Tensor) -> torch.Tensor:
        energy = self.log_mel.mel_power(waveform) * 2.0**62  # (2 ** 31) ** 2: 32-bit integer scale
        batch, n_mels, n_frames = energy.shape
        padded = F.pad(energy.reshape(batch * n_mels, 1, n_frames), (self.n_taps - 1, 0), mode="replicate")
        smooth = F.conv1d(padded, self.smoother_kernel(energy.device, energy.dtype)).reshape(batch, n_mels, n_frames)
        gain, bias, power = torch.exp(self.log_params).unsqueeze(-1).unbind(1)  # each (n_mels, 1)
        agc = energy * torch.exp(-gain * torch.log(smooth + self.eps))  # energy / (eps + smooth) ** gain
        return (agc + bias) ** power - bias**power


def build_features(config: FeatureConfig) -> nn.Module:
    """Build the front end a :class:`FeatureConfig` describes.

    Returns
    -------
    LogMel, MFCC, PCEN or SpeechEmbedding
        A module mapping (batch, n_samples) to (batch, n_features, n_frames); its
        ``n_features`` attribute is set.

    Raises
    ------
    ValueError
        Unknown ``kind`` or a parameter out of range.
    FileNotFoundError
        ``kind == "speech_embedding"`` and its pretrained files are not installed.
    """
    if config.kind == "speech_embedding":
        from audiorec.pretrained import SpeechEmbedding

        return SpeechEmbedding(sample_rate=config.sample_rate, finetune_layers=config.finetune_layers)
    log_mel = dict(
        sample_rate=config.sample_rate,
        win_ms=config.win_ms,
        hop_ms=config.hop_ms,
        n_mels=config.n_mels,
        f_min_hz=config.f_min_hz,
        f_max_hz=config.f_max_hz,
        top_db=config.top_db,
        learnable_dft=config.learnable_dft,
    )
    if config.kind == "log_mel":
        module = LogMel(**log_mel)
        module.n_features = config.n_mels
    elif config.kind == "mfcc":
        module = MFCC(n_mfcc=config.n_mfcc, **log_mel)
        module.n_features = config.n_mfcc
    elif config.kind == "pcen":
        module = PCEN(time_constant_s=config.pcen_time_constant_s, trainable=config.pcen_trainable, **log_mel)
        module.n_features = config.n_mels
    else:
        raise ValueError(f"features.kind must be 'log_mel', 'mfcc', 'pcen' or 'speech_embedding', got {config.kind!r}")
    return module
