"""GMM: the classical baseline. MFCC frames with deltas, one Gaussian mixture per class, fitted by
EM, its size chosen by BIC; a clip goes to the class under which its frames are most likely."""

from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import scipy.fft
import torch
from torch import nn
from torch.nn import functional as F

# Per size: the most components BIC may choose for one class's mixture.
SIZES = {"32": 32, "8": 8, "16": 16, "64": 64}
N_CEPSTRA = 13  # c0..c12 kept from a log-mel input: HTK's 12 cepstra (NUMCEPS=12) and c0
DELTA_WINDOW = 2  # frames each side in the regression of HTK's deltas (DELTAWINDOW=2)
FLOOR_TOLERANCE = 1e-3  # c0 within this of the clip's lowest counts as the floor (units: normalised features)
UNUSED_LOG_WEIGHT = -1e4  # log weight of the unused slots: finite, so logsumexp and ONNX stay finite
REG_COVAR = 1e-3  # added to every variance: features are normalised per clip, so in units of the clip's spread
MAX_FRAMES_PER_CLASS = 30_000  # EM runs on a random subset of this many frames per class at most
MIN_FRAMES_PER_COMPONENT = 10  # a mixture of k components is tried only with 10 k frames or more


def deltas(x: torch.Tensor, window: int = DELTA_WINDOW) -> torch.Tensor:
    """Regression coefficients over time, as HTK computes its delta features.

    ``d[t] = sum_{n=1}^{N} n (c[t + n] - c[t - n]) / (2 sum_{n=1}^{N} n^2)``, the first and last
    frames repeated where ``t +- n`` falls outside the clip.

    Parameters
    ----------
    x : torch.Tensor [shape=(batch, n_coefficients, n_frames)]
    window : int > 0
        ``N``, frames each side.

    Returns
    -------
    torch.Tensor [shape=(batch, n_coefficients, n_frames)]

    References
    ----------
    Young et al., The HTK Book (version 3.4), section 5.9, "Delta, acceleration and third
    differential coefficients", equation 5.16.
    """
    n_frames = x.shape[-1]
    padded = F.pad(x, (window, window), mode="replicate")
    slope = sum(n * (padded[..., window + n : window + n + n_frames] - padded[..., window - n : window - n + n_frames])
                for n in range(1, window + 1))
    return slope / (2 * sum(n * n for n in range(1, window + 1)))


def fit_mixture_by_bic(frames: np.ndarray, max_components: int, seed: int = 0, reg_covar: float = REG_COVAR):
    """Fit diagonal-covariance Gaussian mixtures of 1, 2, 4, ... components by EM; keep the one
    with the lowest BIC.

    Parameters
    ----------
    frames : np.ndarray [shape=(n_frames, dim)]
    max_components : int > 0
        Largest mixture tried. Sizes that would leave fewer than
        :data:`MIN_FRAMES_PER_COMPONENT` frames per component are not tried either (EM then fits
        single frames with the variance floor).
    seed : int
        For the k-means initialisation of EM.
    reg_covar : float > 0
        Added to every variance (a variance floor).

    Returns
    -------
    mixture : sklearn.mixture.GaussianMixture
        The fitted mixture with the lowest BIC.
    bic : dict of int to float
        BIC of every size tried, by number of components.

    Raises
    ------
    ValueError
        Fewer than 2 frames.

    References
    ----------
    Dempster, Laird & Rubin 1977 (EM); Schwarz 1978, "Estimating the dimension of a model" (BIC:
    ``-2 log L + n_parameters log n_frames``); scikit-learn's ``GaussianMixture`` and its ``bic``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    if len(frames) < 2:
        raise ValueError(f"need at least 2 frames to fit a mixture, got {len(frames)}")
    sizes = [1]
    while sizes[-1] * 2 <= max_components and len(frames) >= sizes[-1] * 2 * MIN_FRAMES_PER_COMPONENT:
        sizes.append(sizes[-1] * 2)
    best, bic = None, {}
    for k in sizes:
        mixture = GaussianMixture(k, covariance_type="diag", reg_covar=reg_covar, random_state=seed)
        # One BLAS/OpenMP thread: on two busy cores, two threads made EM five times slower (they
        # spin waiting for each other; 6 s instead of 1.2 s for 8000 frames up to 32 components).
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", ConvergenceWarning)  # 100 EM steps; the BIC compares what they reached
            mixture.fit(frames)
        bic[k] = float(mixture.bic(frames))
        if best is None or bic[k] < bic[best.n_components]:
            best = mixture
    return best, bic


class GMMClassifier(nn.Module):
    """One diagonal-covariance Gaussian mixture per class over MFCC, delta and delta-delta frames.

    The input is the normalised log-mel spectrogram every model gets. An orthonormal DCT-II keeps
    its first 13 cepstra (the MFCCs, as :class:`~audiorec.features.MFCC` computes them), unless
    the front end computes MFCCs already (``dct=False``: all of its coefficients are used). Deltas
    and delta-deltas (:func:`deltas`) are appended, so a frame has ``dim = 3 * n_cepstra`` values
    (39 from log-mel). Class ``c`` scores frame ``x`` by its mixture's log density
    ``log sum_k w_ck N(x; mu_ck, diag(var_ck))``, and a clip by the mean of that over its frames
    above the clip's floor (:meth:`frame_mask`).

    The mixtures are fitted by EM, not by gradient descent: :meth:`fit` (called by ``audiorec
    train``) chooses each class's number of components by BIC and copies the parameters into
    buffers, so the model loads, evaluates and exports like any network.

    ======  ==========================================
    size    most components per class BIC may choose
    ======  ==========================================
    ``32``  32 (the default)
    ``8``   8
    ``16``  16
    ``64``  64
    ======  ==========================================

    On FSDD with george held out, BIC chose the largest size allowed for every class at each of
    these sizes (frames of one utterance are not independent, so BIC, which assumes they are,
    penalises too little on this much data), and test accuracy was 0.84, 0.89, 0.89 and 0.82 at
    8, 16, 32 and 64 components: the size caps what BIC chooses.

    A class of ``k`` components of dimension ``dim`` has ``k (2 dim + 1) - 1`` free parameters
    (:attr:`n_parameters` sums them); the buffers hold the largest size for every class, the
    unused slots with log weight :data:`UNUSED_LOG_WEIGHT`, so a checkpoint loads into the model
    its config builds.

    Parameters
    ----------
    n_features : int
        Bins of the input: log-mel bands, or cepstra when ``dct=False``.
    n_classes : int
    size : {"32", "8", "16", "64"}
        The most components per class; ``""`` means ``"32"``.
    dropout : float
        Unused (a generative model has nothing to drop); accepted as every encoder is built alike.
    dct : bool
        Take the DCT of a log-mel input; False when the front end's output is MFCCs already.

    Shape
    -----
    input : (batch, n_features, n_frames)
    output : (batch, n_classes) logits: the mean log-likelihood per frame under each class

    Raises
    ------
    ValueError
        Unknown ``size``.

    Notes
    -----
    The logits are the total log-likelihood of the clip's scored frames divided by their number.
    Dividing by a number the classes share leaves the ranking, hence the decision, of the total
    log-likelihood unchanged, while a softmax over the totals (a hundred frames' log-likelihoods
    added as if the frames were independent) would give probabilities of 0 or 1 for almost every
    clip. Classes have equal prior probability.

    Frames at the clip's floor (the zero padding of short clips, and silence more than
    ``features.top_db`` below the clip's peak) are neither fitted nor scored. They are alike in
    every class, yet each class's mixture fits them with its own narrow components, whose
    differences then outweigh the speech: on FSDD with george held out, scoring every frame gave
    0.45 test accuracy (0.61 with at most 16 components), dropping the floor frames 0.89.

    References
    ----------
    Reynolds & Rose 1995, "Robust text-independent speaker identification using Gaussian mixture
    speaker models", IEEE Trans. Speech and Audio Processing 3(1) (diagonal GMM per class, EM,
    classify by total log-likelihood); Davis & Mermelstein 1980 (MFCC); Young et al., The HTK
    Book (deltas); Dempster, Laird & Rubin 1977 (EM); Schwarz 1978 (BIC); scikit-learn
    ``GaussianMixture``.
    """

    def __init__(self, n_features: int, n_classes: int, size: str = "32", dropout: float = 0.0, dct: bool = True):
        super().__init__()
        size = size or "32"
        if size not in SIZES:
            raise ValueError(f"gmm size {size!r} is not one of {', '.join(SIZES)}")
        self.max_components = SIZES[size]
        self.n_cepstra = min(N_CEPSTRA, n_features) if dct else n_features
        if dct:
            basis = scipy.fft.dct(np.eye(n_features), type=2, norm="ortho", axis=0)[: self.n_cepstra]
            self.register_buffer("dct", torch.from_numpy(np.asarray(basis, np.float32)), persistent=False)
        else:
            self.dct = None
        self.dim = 3 * self.n_cepstra
        shape = (n_classes, self.max_components, self.dim)
        self.register_buffer("means", torch.zeros(shape))
        self.register_buffer("variances", torch.ones(shape))
        log_weights = torch.full(shape[:2], UNUSED_LOG_WEIGHT)
        log_weights[:, 0] = 0.0  # before fitting, one standard normal per class
        self.register_buffer("log_weights", log_weights)
        self.register_buffer("n_components", torch.ones(n_classes, dtype=torch.long))

    @property
    def n_parameters(self) -> int:
        """Free parameters of the fitted mixtures: ``k (2 dim + 1) - 1`` per class of ``k`` components."""
        return int(sum(k * (2 * self.dim + 1) - 1 for k in self.n_components.tolist()))

    def frames(self, features: torch.Tensor) -> torch.Tensor:
        """Cepstra, deltas and delta-deltas of every frame.

        Parameters
        ----------
        features : torch.Tensor [shape=(batch, n_features, n_frames)]

        Returns
        -------
        torch.Tensor [shape=(batch, n_frames, dim)]
            Cepstra first, then their deltas, then the deltas of the deltas.
        """
        cepstra = torch.matmul(self.dct, features) if self.dct is not None else features
        delta = deltas(cepstra)
        return torch.cat([cepstra, delta, deltas(delta)], dim=1).transpose(1, 2)

    def frame_mask(self, frames: torch.Tensor) -> torch.Tensor:
        """The frames that are scored: those above the clip's floor.

        A frame is at the floor when its c0 (the first cepstrum, proportional to the sum of the
        log-mel bins) is within :data:`FLOOR_TOLERANCE` of the clip's lowest. The front end
        clamps every log-mel bin at ``features.top_db`` below the clip's peak (with ``top_db =
        0``, digital silence sits at the log of the front end's floor), so only a frame with every
        bin at that level reaches the lowest c0; a clip with no such frame loses just its quietest
        one. A clip that is all floor keeps all its frames.

        Parameters
        ----------
        frames : torch.Tensor [shape=(batch, n_frames, dim)]
            From :meth:`frames`.

        Returns
        -------
        torch.Tensor [shape=(batch, n_frames), dtype=bool]
        """
        c0 = frames[..., 0]
        above = c0 > c0.amin(dim=1, keepdim=True) + FLOOR_TOLERANCE
        return above | ~above.any(dim=1, keepdim=True)

    def frame_log_likelihood(self, frames: torch.Tensor) -> torch.Tensor:
        """Log density of every frame under every class's mixture.

        Parameters
        ----------
        frames : torch.Tensor [shape=(batch, n_frames, dim)]
            From :meth:`frames`.

        Returns
        -------
        torch.Tensor [shape=(batch, n_frames, n_classes)]
            Natural log; ``sklearn.mixture.GaussianMixture.score_samples`` of the same mixture.
        """
        n_classes, n_slots, dim = self.means.shape
        means = self.means.reshape(-1, dim)
        precisions = 1.0 / self.variances.reshape(-1, dim)
        # The square expanded as scikit-learn does, so the work is two matrix products:
        # sum_d (x_d - mu_d)^2 / var_d = x^2 . prec - 2 x . (mu prec) + mu^2 . prec.
        log_det = torch.log(self.variances).reshape(-1, dim).sum(1)
        constant = self.log_weights.reshape(-1) - 0.5 * (dim * math.log(2 * math.pi) + log_det + (means * means * precisions).sum(1))
        quadratic = torch.matmul(frames * frames, precisions.T) - 2 * torch.matmul(frames, (means * precisions).T)
        log_joint = (constant - 0.5 * quadratic).reshape(*frames.shape[:2], n_classes, n_slots)
        return torch.logsumexp(log_joint, dim=-1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        frames = self.frames(features)
        weights = self.frame_mask(frames).to(frames.dtype).unsqueeze(-1)
        return (self.frame_log_likelihood(frames) * weights).sum(dim=1) / weights.sum(dim=1)

    def fit(self, frames_by_class: Sequence[np.ndarray], seed: int = 0, max_frames: int = MAX_FRAMES_PER_CLASS,
            reg_covar: float = REG_COVAR) -> list:
        """Fit every class's mixture by EM, its size chosen by BIC, into the buffers.

        Parameters
        ----------
        frames_by_class : sequence of np.ndarray [shape=(n_frames_c, dim)]
            Training frames of each class, in output order: :meth:`frames` where
            :meth:`frame_mask` is true.
        seed : int
            Subsampling and EM initialisation.
        max_frames : int
            A random subset of at most this many frames per class is used.
        reg_covar : float > 0
            Variance floor (see :func:`fit_mixture_by_bic`).

        Returns
        -------
        list of sklearn.mixture.GaussianMixture
            The chosen mixture of each class; :attr:`n_components` holds their sizes.

        Raises
        ------
        ValueError
            Not one array per class, a wrong frame dimension, or a class with fewer than 2 frames.
        """
        n_classes = self.means.shape[0]
        if len(frames_by_class) != n_classes:
            raise ValueError(f"need frames for each of the {n_classes} classes, got {len(frames_by_class)}")
        rng = np.random.default_rng(seed)
        mixtures = []
        for c, frames in enumerate(frames_by_class):
            frames = np.asarray(frames, np.float64)
            if frames.ndim != 2 or frames.shape[1] != self.dim:
                raise ValueError(f"class {c}: frames must be (n, {self.dim}), got shape {frames.shape}")
            if len(frames) > max_frames:
                frames = frames[rng.choice(len(frames), max_frames, replace=False)]
            mixture, _ = fit_mixture_by_bic(frames, self.max_components, seed, reg_covar)
            k = mixture.n_components
            with torch.no_grad():
                self.means[c] = 0.0
                self.variances[c] = 1.0
                self.log_weights[c] = UNUSED_LOG_WEIGHT
                self.means[c, :k] = torch.from_numpy(mixture.means_)
                self.variances[c, :k] = torch.from_numpy(mixture.covariances_)
                self.log_weights[c, :k] = torch.from_numpy(np.log(mixture.weights_))
                self.n_components[c] = k
            mixtures.append(mixture)
        return mixtures
