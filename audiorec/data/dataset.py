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

from audiorec.audio import SAMPLE_RATE, fit_to_length, load_audio
from audiorec.data.manifest import Utterance

if TYPE_CHECKING:
    from audiorec.augment import WaveformAugment


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


class ClipDataset(torch.utils.data.Dataset):
    """Fixed-length labelled clips, augmented at random for training.

    Parameters
    ----------
    waveforms : list of np.ndarray [shape=(n,)]
        Mono clips at ``sample_rate`` (see :func:`load_waveforms`).
    targets : list of int
        Class index of each clip.
    clip_samples : int > 0
        Length every clip is cut or padded to (see :func:`~audiorec.audio.fit_to_length`).
    augment : WaveformAugment, optional
        The training chain of waveform effects (built with ``clip_samples``); None for evaluation.
    seed : int
        With the epoch and index, seeds each clip's augmentation, so an epoch is the same whether
        run straight through, resumed from a checkpoint, or spread over loader workers.

    Items
    -----
    (waveform [shape=(clip_samples,)] float32 tensor, target int)
    """

    def __init__(
        self,
        waveforms: list[np.ndarray],
        targets: list[int],
        clip_samples: int,
        augment: "WaveformAugment | None" = None,
        seed: int = 0,
    ):
        if len(waveforms) != len(targets):
            raise ValueError(f"{len(waveforms)} waveforms but {len(targets)} targets")
        if augment is not None and augment.clip_samples != clip_samples:
            raise ValueError(f"augmentation cuts clips to {augment.clip_samples} samples, the data set to {clip_samples}")
        self.augment = augment
        # Evaluation clips are cut once; training clips are cut after speed perturbation.
        self.waveforms = waveforms if augment else [fit_to_length(w, clip_samples) for w in waveforms]
        self.targets = list(targets)
        self.clip_samples = clip_samples
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream for ``epoch`` (called by the training task)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.waveforms)

    def __getitem__(self, index: int):
        if self.augment is None:
            clip = self.waveforms[index]
        else:
            clip, _ = self.augment(self.waveforms[index], (self.seed, self.epoch, index))
        return torch.from_numpy(clip), self.targets[index]
