"""Speaker-disjoint train/validation/test splits and leave-one-speaker-out folds.

A speaker's clips always land in one split, so test accuracy measures unseen speakers. Files
without a speaker (Speech Commands ``_silence_``) are each their own group. Groups are ordered by
the SHA-1 of their name, as in Warden 2018 (Speech Commands' ``which_set``), so the split depends
only on the names, never on the order of files or on the random seed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Iterator, Sequence

from audiorec.data.manifest import Utterance


@dataclass(frozen=True)
class Split:
    """Three disjoint lists of utterances.

    Attributes
    ----------
    train, val, test : list of Utterance
    """

    train: list[Utterance]
    val: list[Utterance]
    test: list[Utterance]

    def speakers(self, part: str) -> set[str]:
        """Speakers (not file groups) in ``part`` ("train", "val" or "test")."""
        return {u.speaker for u in getattr(self, part) if u.speaker is not None}


def _hash_order(groups: set[str]) -> list[str]:
    return sorted(groups, key=lambda g: hashlib.sha1(g.encode("utf-8")).hexdigest())


def _take(n_groups: int, fraction: float) -> int:
    # At least one group whenever there are enough to leave one for training.
    return max(1, round(fraction * n_groups)) if fraction > 0 and n_groups >= 2 else 0


def speaker_split(
    utterances: Sequence[Utterance],
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    test_speakers: Sequence[str] | None = None,
) -> Split:
    """Split utterances so that no speaker appears in two parts.

    Parameters
    ----------
    utterances : sequence of Utterance
    val_fraction, test_fraction : float in [0, 1)
        Share of speakers (not of clips) for validation and test, and the same share of the
        files without a speaker; at least one of each kind when there are enough.
    test_speakers : sequence of str, optional
        The test set is exactly these speakers' clips (``test_fraction`` is then ignored);
        validation is drawn from the other speakers and files.

    Returns
    -------
    Split

    Raises
    ------
    ValueError
        A fraction is out of range, a test speaker is not in the data, or the training part
        would be empty.
    """
    for name, value in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1), got {value}")
    speakers = {u.speaker for u in utterances if u.speaker is not None}
    if test_speakers:
        unknown = [s for s in test_speakers if s not in speakers]
        if unknown:
            raise ValueError(
                f"test speaker(s) {', '.join(unknown)} not in the data; "
                f"known speakers: {', '.join(sorted(speakers)[:20])}{' ...' if len(speakers) > 20 else ''}"
            )
    # Speakers and speaker-less files are allotted separately, so each part gets its share of
    # both (Speech Commands' _silence_ clips would otherwise crowd out speakers).
    test_groups: set[str] = set()
    val_groups: set[str] = set()
    for kind in (speakers, {u.group for u in utterances if u.speaker is None}):
        if not kind:
            continue
        if test_speakers:
            # Explicit test speakers are the whole test set; other groups go to train and val.
            test_groups |= set(test_speakers) & kind
            rest = _hash_order(kind - set(test_speakers))
        else:
            ordered = _hash_order(kind)
            n_test = _take(len(ordered), test_fraction)
            test_groups |= set(ordered[:n_test])
            rest = ordered[n_test:]
        # The validation share is of all groups, so 80/10/10 stays 80/10/10 with explicit test speakers.
        n_val = min(_take(len(kind), val_fraction), max(len(rest) - 1, 0))
        val_groups |= set(rest[:n_val])
    split = Split(
        train=[u for u in utterances if u.group not in test_groups | val_groups],
        val=[u for u in utterances if u.group in val_groups],
        test=[u for u in utterances if u.group in test_groups],
    )
    if not split.train:
        raise ValueError(f"no training data left: {len(speakers)} speaker(s) in all")
    return split


def loso_folds(utterances: Sequence[Utterance], val_fraction: float = 0.1) -> Iterator[tuple[str, Split]]:
    """Leave-one-speaker-out folds: each speaker is the test set once.

    Parameters
    ----------
    utterances : sequence of Utterance
    val_fraction : float in [0, 1)
        As in :func:`speaker_split`, drawn from the other speakers.

    Yields
    ------
    speaker : str
        The held-out speaker.
    split : Split
        Its speaker-disjoint split.
    """
    for speaker in sorted({u.speaker for u in utterances if u.speaker is not None}):
        yield speaker, speaker_split(utterances, val_fraction=val_fraction, test_speakers=[speaker])
