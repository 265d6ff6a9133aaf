"""Waveforms for training and evaluation: load once, cut every clip to one length, batch.

Clips are decoded once into memory (a progress bar shows it), which on two cores is much faster
than decoding and resampling every epoch; the shared corpora take a few hundred MB.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from tqdm import tqdm

from audiorec.audio import SAMPLE_RATE, load_audio
from audiorec.augment import add_noise, speed_perturb, time_shift
from audiorec.data.manifest import Utterance

if TYPE_CHECKING:
    from audiorec.config import AugmentConfig


def load_waveforms(
    utterances: Sequence[Utterance], sample_rate: int = SAMPLE_RATE, progress: bool = True, desc: str = "load"
) -> list[np.ndarray]:
    """Decode every utterance to mono float32 at ``sample_rate``.

    Parameters
    ----------
    utterances : sequence of Utterance
    sample_rate : int
        Hz.
    progress : bool
        Show a progress bar on stderr.
    desc : str
        The progress bar's label.

    Returns
    -------
    list of np.ndarray [shape=(n_samples,)]

    Raises
    ------
    AudioError
        A file can no longer be decoded (it changed since the import).
    """
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = pool.map(lambda u: load_audio(u.path, sample_rate), utterances)
        return list(tqdm(results, total=len(utterances), desc=desc, unit="file", disable=not progress))


def fit_to_length(waveform: np.ndarray, n_samples: int) -> np.ndarray:
    """Centre-pad a short clip with zeros, or cut a long one to its loudest window.

    Parameters
    ----------
    waveform : np.ndarray [shape=(n,)]
    n_samples : int > 0
        The length every clip is given.

    Returns
    -------
    np.ndarray [shape=(n_samples,), dtype=float32]
        For a long clip, the window of ``n_samples`` with the most energy, so a word recorded
        with long silences around it is kept whole.
    """
    n = len(waveform)
    if n == n_samples:
        return waveform.astype(np.float32, copy=False)
    if n < n_samples:
        out = np.zeros(n_samples, np.float32)
        start = (n_samples - n) // 2
        out[start : start + n] = waveform
        return out
    energy = np.concatenate([[0.0], np.cumsum(waveform.astype(np.float64) ** 2)])
    window_energy = energy[n_samples:] - energy[:-n_samples]
    start = int(np.argmax(window_energy))
    return waveform[start : start + n_samples].astype(np.float32)


class ClipDataset(torch.utils.data.Dataset):
    """Fixed-length labelled clips, augmented at random for training.

    Parameters
    ----------
    waveforms : list of np.ndarray [shape=(n,)]
        Mono clips at ``sample_rate`` (see :func:`load_waveforms`).
    targets : list of int
        Class index of each clip.
    clip_samples : int > 0
        Length every clip is cut or padded to (see :func:`fit_to_length`).
    augment : AugmentConfig, optional
        Speed perturbation, time shift and noise for training; None for evaluation.
    sample_rate : int
        Hz.
    seed : int
        With the epoch and index, seeds each clip's augmentation, so an epoch is the same whether
        run straight through or resumed from a checkpoint.

    Items
    -----
    (waveform [shape=(clip_samples,)] float32 tensor, target int)
    """

    def __init__(
        self,
        waveforms: list[np.ndarray],
        targets: list[int],
        clip_samples: int,
        augment: "AugmentConfig | None" = None,
        sample_rate: int = SAMPLE_RATE,
        seed: int = 0,
    ):
        if len(waveforms) != len(targets):
            raise ValueError(f"{len(waveforms)} waveforms but {len(targets)} targets")
        self.augment = augment
        # Evaluation clips are cut once; training clips are cut after speed perturbation.
        self.waveforms = waveforms if augment else [fit_to_length(w, clip_samples) for w in waveforms]
        self.targets = list(targets)
        self.clip_samples = clip_samples
        self.sample_rate = sample_rate
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream for ``epoch`` (called by the training task)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.waveforms)

    def _augmented(self, index: int) -> np.ndarray:
        a = self.augment
        rng = np.random.default_rng([self.seed, self.epoch, index])
        clip = self.waveforms[index]
        if a.speed_max > a.speed_min or a.speed_min != 1:
            clip = speed_perturb(clip, float(rng.uniform(a.speed_min, a.speed_max)), self.sample_rate)
        clip = fit_to_length(clip, self.clip_samples)
        clip = time_shift(clip, round(a.time_shift_ms * self.sample_rate / 1000), rng)
        if rng.random() < a.noise_prob:
            clip = add_noise(clip, float(rng.uniform(a.snr_db_min, a.snr_db_max)), rng)
        return clip

    def __getitem__(self, index: int):
        clip = self._augmented(index) if self.augment else self.waveforms[index]
        return torch.from_numpy(clip), self.targets[index]
