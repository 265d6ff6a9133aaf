"""Waveforms for training and evaluation: load once, cut every clip to one length, batch.

Clips are decoded once into memory (a progress bar shows it), which on two cores is much faster
than decoding and resampling every epoch; the shared corpora take a few hundred MB.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Collection, Sequence

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


class _WaveformDataset(torch.utils.data.Dataset):
    """Waveforms augmented from a stream seeded by ``(seed, epoch, index)``: what both data sets share."""

    waveforms: list
    epoch: int = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream for ``epoch`` (called by the training task)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.waveforms)


class ClipDataset(_WaveformDataset):
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
    speakers : list of int, optional
        Speaker index of each clip (-1 for none), for speaker-adversarial training; items then
        carry it third.
    random_window : collection of int, optional
        Targets (class indices) whose long clips ``augment`` cuts at a random window of speech,
        another each epoch (:class:`~audiorec.augment.RandomWindowConfig`), not at the loudest.

    Items
    -----
    (waveform [shape=(clip_samples,)] float32 tensor, target int), or (waveform, target, speaker
    int) with ``speakers``.

    Raises
    ------
    ValueError
        ``targets`` or ``speakers`` of another length than ``waveforms``, or an augmentation
        built for another clip length.
    """

    def __init__(
        self,
        waveforms: list[np.ndarray],
        targets: list[int],
        clip_samples: int,
        augment: "WaveformAugment | None" = None,
        seed: int = 0,
        speakers: list[int] | None = None,
        random_window: Collection[int] = (),
    ):
        if len(waveforms) != len(targets):
            raise ValueError(f"{len(waveforms)} waveforms but {len(targets)} targets")
        if speakers is not None and len(speakers) != len(waveforms):
            raise ValueError(f"{len(waveforms)} waveforms but {len(speakers)} speakers")
        if augment is not None and augment.clip_samples != clip_samples:
            raise ValueError(f"augmentation cuts clips to {augment.clip_samples} samples, the data set to {clip_samples}")
        self.augment = augment
        # Evaluation clips are cut once; training clips are cut after speed perturbation.
        self.waveforms = waveforms if augment else [fit_to_length(w, clip_samples) for w in waveforms]
        self.targets = list(targets)
        self.clip_samples = clip_samples
        self.seed = seed
        self.epoch = 0
        self.speakers = None if speakers is None else list(speakers)
        self.random_window = frozenset(random_window)

    def __getitem__(self, index: int):
        if self.augment is None:
            clip = self.waveforms[index]
        else:
            clip, _ = self.augment(self.waveforms[index], (self.seed, self.epoch, index),
                                   self.targets[index] in self.random_window)
        if self.speakers is None:
            return torch.from_numpy(clip), self.targets[index]
        return torch.from_numpy(clip), self.targets[index], self.speakers[index]


class UtteranceDataset(_WaveformDataset):
    """Transcribed utterances of any length, augmented at random for training.

    Parameters
    ----------
    waveforms : list of np.ndarray [shape=(n,)]
        Mono utterances at the model's sample rate (see :func:`load_waveforms`).
    targets : list of list of int
        Token ids of each transcript (:meth:`audiorec.tokenizer.CharTokenizer.encode`).
    texts : list of str
        The transcripts, carried into the batches for scoring.
    augment : WaveformAugment, optional
        Built without a clip length, so speed perturbation changes the length; None for evaluation.
    seed : int
        With the epoch and index, seeds each utterance's augmentation (as :class:`ClipDataset`).

    Items
    -----
    (waveform [shape=(n,)] float32 tensor, token ids [shape=(n_tokens,)] int64 tensor, text str)

    Raises
    ------
    ValueError
        The three lists differ in length.
    """

    def __init__(self, waveforms: list[np.ndarray], targets: list[list[int]], texts: list[str],
                 augment: "WaveformAugment | None" = None, seed: int = 0):
        if not len(waveforms) == len(targets) == len(texts):
            raise ValueError(f"{len(waveforms)} waveforms, {len(targets)} targets and {len(texts)} texts")
        self.waveforms, self.targets, self.texts = waveforms, targets, texts
        self.augment = augment
        self.seed = seed
        self.epoch = 0

    def __getitem__(self, index: int):
        wave = self.waveforms[index]
        if self.augment is not None:
            wave, _ = self.augment(wave, (self.seed, self.epoch, index))
        return torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), torch.tensor(self.targets[index], dtype=torch.long), self.texts[index]


def collate_utterances(items):
    """Pad a list of :class:`UtteranceDataset` items into one batch.

    Returns
    -------
    waveform : torch.Tensor [shape=(batch, max_samples)]
        Zero-padded at the end.
    lengths : torch.Tensor [shape=(batch,)]
        Valid samples.
    targets : torch.Tensor [shape=(sum of target lengths,)]
        Token ids, concatenated (the layout ``torch.nn.CTCLoss`` takes).
    target_lengths : torch.Tensor [shape=(batch,)]
    texts : list of str

    References
    ----------
    ``torch.nn.CTCLoss`` (the concatenated-targets form of Graves et al. 2006's loss).
    """
    waves, targets, texts = zip(*items)
    lengths = torch.tensor([len(w) for w in waves], dtype=torch.long)
    return (torch.nn.utils.rnn.pad_sequence(waves, batch_first=True), lengths, torch.cat(targets),
            torch.tensor([len(t) for t in targets], dtype=torch.long), list(texts))


class BucketBatchSampler(torch.utils.data.Sampler):
    """Batches of utterances of similar length, in random order; SortaGrad in the first epoch.

    Utterances are sorted by duration (perturbed by up to +-10% at random each epoch, so the
    batches are not the same every epoch) and cut into batches, which are then shuffled: a batch
    wastes little time on padding. In the first epoch with ``sortagrad`` the batches go from the
    shortest to the longest utterances, which Amodei et al. 2016 (section 3.1, "SortaGrad")
    found to make CTC training stable.

    Parameters
    ----------
    durations : sequence of float
        Seconds per utterance.
    batch_size : int > 0
    seed : int
    sortagrad : bool

    Raises
    ------
    ValueError
        ``batch_size`` is not positive.
    """

    def __init__(self, durations, batch_size: int, seed: int = 0, sortagrad: bool = True):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.durations = np.asarray(durations, dtype=np.float64)
        self.batch_size, self.seed, self.sortagrad = batch_size, seed, sortagrad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the order of ``epoch`` (Lightning calls it at the start of each epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-len(self.durations) // self.batch_size)

    def __iter__(self):
        rng = np.random.default_rng([self.seed, self.epoch])
        if self.epoch == 0 and self.sortagrad:
            order = np.argsort(self.durations, kind="stable")
            yield from (order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size))
            return
        order = np.argsort(self.durations * rng.uniform(0.9, 1.1, len(self.durations)), kind="stable")
        batches = [order[i : i + self.batch_size].tolist() for i in range(0, len(order), self.batch_size)]
        for b in rng.permutation(len(batches)):
            yield batches[b]
