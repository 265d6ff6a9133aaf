"""One configuration per run: typed defaults, an optional YAML file, and ``key=value`` overrides.

Resolution order (later wins): the dataclass defaults below, the task's defaults
(:data:`TASK_DEFAULTS`, for ``task=asr``, and :data:`MODEL_DEFAULTS`), ``--config FILE.yaml``, dotted overrides on the command
line (``train.max_epochs=20 features.n_mels=64``), then the dedicated flags (``--task``,
``--max-epochs``, ``--seed``, ``--test-speakers``). The resolved config is saved in the run
directory as ``config.yaml``. Types and names are checked by OmegaConf; ranges by :func:`validate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from audiorec.augment import AugmentConfig, check_augment_config
from audiorec.data.corpora import ValidationConfig
from audiorec.features import FeatureConfig


@dataclass
class DataConfig:
    """Which clips, how they are split and batched.

    Attributes
    ----------
    layout : str
        Corpus layout for on-the-fly import (see :mod:`audiorec.data.corpora`).
    clip_ms : float
        Every clip is padded or cut to this length in milliseconds.
    val_fraction, test_fraction : float
        Shares of speaker groups for validation and test.
    test_speakers : list of str
        Explicit test speakers (overrides ``test_fraction``).
    extra_train : str
        Corpus folder or ``.jsonl`` manifest of other speakers' clips added to the training split
        only (never validated or tested on), for example another corpus's recordings of the same
        words; its speakers must not occur in the data and its labels must be among the data's.
        Empty adds none. With ``audiorec cv`` every fold trains on them and the folds stay those
        of the data's own speakers. FSDD leave-one-speaker-out with Speech Commands' 240 digit
        words (118 more speakers) added: see the README (``benchmarks/extra_speakers.py``).
    batch_size : int
    validation : ValidationConfig
        Thresholds for excluding files at import.
    """

    layout: str = "auto"
    clip_ms: float = 1000.0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    test_speakers: list[str] = field(default_factory=list)
    extra_train: str = ""
    batch_size: int = 64
    validation: ValidationConfig = field(default_factory=ValidationConfig)


@dataclass
class ModelConfig:
    """The network.

    Attributes
    ----------
    name : str
        Architecture, a key of :data:`audiorec.models.ENCODERS`: ``cnn`` (VGG-style, sized by
        ``channels``), ``cnn_trad_fpool3`` (Sainath & Parada 2015), ``ds_cnn`` (Zhang et al.
        2017), ``bc_resnet`` (Kim et al. 2021), ``matchboxnet`` (Majumdar & Ginsburg 2020),
        ``crnn_fourier`` (convolutions, a bidirectional LSTM and dense layers; with
        ``features.learnable_dft=true`` its Fourier front end is trained too), or ``gmm``, the
        classical baseline: a Gaussian mixture per class over MFCC frames, fitted by EM
        (Reynolds & Rose 1995; :mod:`audiorec.models.gmm`), or ``speech_embedding``, a small
        head trained over Google's pretrained speech embedding, frozen (Lin et al. 2020;
        :mod:`audiorec.pretrained`; it sets ``features.kind=speech_embedding``).
    channels : list of int
        Filters per stage of ``cnn``; the other architectures ignore it. Four stages by
        default (293k parameters): the fourth, after a third 2x2 pooling, widens what one output
        of the last stage sees from 30 to 66 frames (300 to 660 ms, about a whole word) and all
        40 mel bands. Against three stages (``[16, 32, 64]``, 70k parameters), seed 0: Speech
        Commands 12 classes 0.944 -> 0.965; FSDD leave-one-speaker-out mean 0.956 -> 0.965 and
        worst fold 0.922 -> 0.944; at seed 1, 0.937 -> 0.962, 0.950 -> 0.954 and 0.912 -> 0.926
        (the LOSO gain is smaller than the 1.1 points between seeds, but has the same sign at
        both); ONNX Runtime latency per 1 s clip (one thread) 1.25 times longer, 0.51 -> 0.64 ms
        side by side. Streaming detection at <= 1 false accept per hour went 64.8% -> 46.2% at
        seed 0 and 27.9% -> 38.8% at seed 1 (README, export section: that figure swings with
        the seed).
    size : str
        A size the architecture's paper names; empty means the first one listed here.
        ``cnn_trad_fpool3``: ``fpool3``. ``ds_cnn``: ``S``, ``M``, ``L``. ``bc_resnet``: the
        width multiplier ``1``, ``3``, ``8``. ``matchboxnet``: ``BxRxC`` = ``3x1x64``, ``3x2x64``,
        ``6x2x64``. ``crnn_fourier``: ``S``, ``M``, ``L``. ``speech_embedding``: ``M``, ``S``. ``gmm``: the most components per
        class that BIC may choose, ``32``, ``8``, ``16``, ``64``. ``deepspeech2`` (``task=asr``):
        ``S``, ``XS``, ``M``, ``L``. ``cnn`` has none (leave it empty). Building the model raises
        ``ValueError`` for a size its architecture does not have.
    dropout : float
        Where the architecture's paper puts it (see each encoder's docstring).
    rnn_type : str
        ``gru`` or ``lstm``: the recurrent layers of ``deepspeech2``.
    """

    name: str = "cnn"
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    size: str = ""
    dropout: float = 0.2
    rnn_type: str = "gru"


@dataclass
class TokenizerConfig:
    """How transcripts become the output tokens of a speech recognizer (``task=asr``).

    Attributes
    ----------
    kind : str
        ``char`` (letters, apostrophe and a word separator) or ``sentencepiece`` (unigram
        subwords, Kudo & Richardson 2018), trained on the training transcripts.
    vocab_size : int
        Tokens of ``sentencepiece``, the CTC blank and ``<unk>`` included; ``char`` ignores it.
    """

    kind: str = "char"
    vocab_size: int = 100


OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw")
SCHEDULES = ("constant", "warmup_cosine", "cosine", "one_cycle")


@dataclass
class TrainConfig:
    """The optimisation.

    Attributes
    ----------
    max_epochs : int
    optimizer : str
        One of ``sgd``, ``momentum`` (SGD with heavy-ball momentum), ``nesterov``, ``adagrad``,
        ``adadelta``, ``rmsprop``, ``adam``, ``adamw`` (see :mod:`audiorec.tasks.commands`).
    lr : float
        Peak learning rate.
    momentum : float
        For ``momentum``, ``nesterov`` and ``rmsprop``.
    weight_decay : float
        Decoupled for ``adamw`` (Loshchilov & Hutter 2019), an L2 penalty for the others.
    finetune_lr_scale : float > 0
        Multiplies the learning rate of pretrained weights being fine-tuned
        (``features.finetune_layers``), so that they move less than the new layers above them
        (discriminative fine-tuning, Howard & Ruder 2018).
    schedule : str
        ``constant``, ``warmup_cosine`` (linear warm-up, then cosine to zero), ``cosine`` (no
        warm-up) or ``one_cycle`` (Smith & Topin 2019), stepped per batch.
    warmup_fraction : float
        Share of all steps spent warming up (``warmup_cosine``) or rising (``one_cycle``).
    gradient_clip : float
        Largest gradient norm; 0 turns clipping off.
    label_smoothing : float
    monitor : str
        Command recognition only: the validation metric that picks ``best.ckpt`` and stops
        training early, ``val_loss`` or ``val_acc``. The loss, because accuracy on the few
        validation speakers of a small corpus saturates early: on FSDD, lucas reached 0.984 at
        epoch 9 of 40, no later epoch beat it, and the run stopped at epoch 21 keeping epoch 9's
        weights (george 0.746, against 0.874 for the weights of epoch 21), while the loss kept
        falling to the end. Speech recognition picks on ``val_wer`` and stops on the loss.
    patience : int
        Epochs without a better ``monitor`` (commands) or validation loss (speech recognition)
        before early stopping.
    ema_decay : float
        Decay per step of the moving average of the weights used for validation and
        inference; 0 turns it off.
    teacher : str
        Command recognition only: a trained run directory (or an ``audiorec cv`` folder, whose
        ``fold_<speaker>`` matching this run's test speaker is used) whose model teaches this one
        by knowledge distillation (Hinton et al. 2015): the loss adds the KL divergence from the
        teacher's softened output on the same augmented batch. Empty trains without a teacher.
        The teacher must have the same labels and sample rate, and none of this run's test clips
        among its training or validation clips (:func:`~audiorec.train.load_teacher`); see
        :class:`~audiorec.tasks.commands.CommandTask`.
    distill_weight : float in [0, 1]
        Weight of the distillation term; the cross-entropy with the labels gets ``1 -
        distill_weight``.
    distill_temperature : float > 0
        Temperature dividing both models' logits in the distillation term (its gradient is
        scaled by the square, as Hinton et al. do).
    speaker_adversarial_weight : float >= 0
        Command recognition only: the largest weight of speaker-adversarial training
        (domain-adversarial training, Ganin & Lempitsky 2015, applied to speakers as in Meng et
        al. 2018, "Speaker-invariant training via adversarial learning"). A small head learns to
        name each training clip's speaker from the encoder's pooled embedding (what the network's
        last layer sees), and a gradient-reversal layer passes its gradient to the encoder
        negated and scaled by this weight, so the encoder learns features from which the speaker
        cannot be told. The weight rises from 0 as ``2 / (1 + exp(-10 p)) - 1`` times this
        value over the training progress ``p`` (Ganin & Lempitsky's schedule). 0 turns it off;
        the head is not part of the saved model. See
        :class:`~audiorec.tasks.commands.SpeakerAdversary`.
    seed : int
    accelerator : str
        ``cpu``, ``gpu`` or ``auto`` (a GPU when present).
    num_workers : int
        Data-loader worker processes that run the waveform augmentation beside training; -1
        picks one fewer than the CPU cores (at least 1, at most 8). On two cores one worker
        cut the share of step time spent waiting for data from 60% to 2% (FSDD, default recipe).
    """

    max_epochs: int = 40
    optimizer: str = "adamw"
    lr: float = 3e-3
    momentum: float = 0.9
    weight_decay: float = 1e-2
    finetune_lr_scale: float = 0.1
    schedule: str = "warmup_cosine"
    warmup_fraction: float = 0.1
    gradient_clip: float = 5.0
    label_smoothing: float = 0.1
    monitor: str = "val_loss"
    patience: int = 12
    ema_decay: float = 0.995
    teacher: str = ""
    distill_weight: float = 0.5
    distill_temperature: float = 2.0
    speaker_adversarial_weight: float = 0.0
    seed: int = 0
    accelerator: str = "auto"
    num_workers: int = -1


TASKS = ("commands", "asr")


@dataclass
class Config:
    """A whole run's configuration: the task, then features, data, augment, model, train, tokenizer.

    ``task`` is ``commands`` (one label per clip, cross-entropy) or ``asr`` (a transcript per
    utterance, CTC; its defaults are :data:`TASK_DEFAULTS`).
    """

    task: str = "commands"
    features: FeatureConfig = field(default_factory=FeatureConfig)
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)


# What a task changes in the defaults above, before a config file and overrides apply. Speech
# recognition trains on whole utterances of seconds (no clip length), with CTC (no label
# smoothing), on a DeepSpeech2 model. Its augmentation is speed perturbation (Ko et al. 2015),
# SpecAugment with masks sized for utterances (Park et al. 2019; narrower than the paper's
# LibriSpeech policy because AN4's spelled letters last about 300 ms) and gain; time shifts that
# cut speech off, pitch shifts and tempo changes are off, and so are the channel and noise
# effects, which on two cores took CPU time from the network's training. Validation and the
# saved model use a moving average of the weights over about the last 1000 steps (18 AN4 epochs)
# and dropout is 0.2: on AN4 the two together took the test WER from 10.35% to 8.28% (no
# average, dropout 0.1) at the same 60 epochs.
TASK_DEFAULTS = {
    "asr": {
        "model": {"name": "deepspeech2", "size": "S", "dropout": 0.2},
        "data": {"batch_size": 16},
        "train": {"max_epochs": 60, "lr": 1.5e-3, "weight_decay": 1e-2, "label_smoothing": 0.0, "patience": 20,
                  "warmup_fraction": 0.05, "gradient_clip": 5.0, "ema_decay": 0.999},
        "augment": {
            "time_shift": {"p": 0.0}, "pitch_shift": {"p": 0.0}, "tempo": {"p": 0.0}, "echo": {"p": 0.0},
            "band_pass": {"p": 0.0}, "reverb": {"p": 0.0}, "gain": {"p": 0.3}, "color_noise": {"p": 0.0},
            "spec_augment": {"freq_masks": 2, "freq_mask_width": 8, "time_masks": 2, "time_mask_width": 15},
        },
    },
}


# What a model changes in the defaults, as TASK_DEFAULTS does for a task. ``speech_embedding`` is
# a head over its own pretrained front end (Lin et al. 2020), whose 96 embedding values every
# 80 ms are not mel bands: SpecAugment's masks (8 bands, 15 frames) would hide most of a clip, so
# they are off and the head's dropout on the embedding does their work.
MODEL_DEFAULTS = {
    "speech_embedding": {
        "features": {"kind": "speech_embedding"},
        "augment": {"spec_augment": {"freq_masks": 0, "time_masks": 0}},
    },
}


class ConfigError(ValueError):
    """A configuration file, key or value is wrong; the message names it."""


def validate(config: Config) -> Config:
    """Check value ranges that types alone cannot.

    Raises
    ------
    ConfigError
        Naming the first key out of range and its value.
    """
    checks = [
        ("data.clip_ms", config.data.clip_ms > 0),
        ("data.batch_size", config.data.batch_size > 0),
        ("data.val_fraction", 0 <= config.data.val_fraction < 1),
        ("data.test_fraction", 0 <= config.data.test_fraction < 1),
        ("train.max_epochs", config.train.max_epochs > 0),
        ("train.lr", config.train.lr > 0),
        ("train.finetune_lr_scale", config.train.finetune_lr_scale > 0),
        ("features.finetune_layers", config.features.finetune_layers >= 0),
        ("train.patience", config.train.patience > 0),
        ("train.monitor", config.train.monitor in ("val_loss", "val_acc")),
        ("train.ema_decay", 0 <= config.train.ema_decay < 1),
        ("train.label_smoothing", 0 <= config.train.label_smoothing < 1),
        ("model.dropout", 0 <= config.model.dropout < 1),
        ("train.distill_weight", 0 <= config.train.distill_weight <= 1),
        ("train.distill_temperature", config.train.distill_temperature > 0),
        ("train.speaker_adversarial_weight", config.train.speaker_adversarial_weight >= 0),
        ("train.optimizer", config.train.optimizer in OPTIMIZERS),
        ("train.schedule", config.train.schedule in SCHEDULES),
        ("train.warmup_fraction", 0 <= config.train.warmup_fraction < 1),
        ("train.gradient_clip", config.train.gradient_clip >= 0),
        ("train.num_workers", config.train.num_workers >= -1),
        ("features.sample_rate", config.features.sample_rate > 0),
        ("task", config.task in TASKS),
        ("tokenizer.kind", config.tokenizer.kind in ("char", "sentencepiece")),
        ("tokenizer.vocab_size", config.tokenizer.vocab_size > 0),
        ("model.rnn_type", config.model.rnn_type in ("gru", "lstm")),
    ]
    for key, ok in checks:
        if not ok:
            value = config
            for name in key.split("."):
                value = getattr(value, name)
            choices = {"train.optimizer": OPTIMIZERS, "train.schedule": SCHEDULES, "task": TASKS,
                       "tokenizer.kind": ("char", "sentencepiece"), "model.rnn_type": ("gru", "lstm")}.get(key)
            raise ConfigError(f"{key}={value} is " + (f"not one of {', '.join(choices)}" if choices else "out of range"))
    for key, value in check_augment_config(config.augment):
        raise ConfigError(f"augment.{key}={value} is out of range")
    from audiorec.models import ASR_ENCODERS, ENCODERS  # imported here: the models need torch, reading a config does not

    if config.train.teacher and (config.task != "commands" or config.model.name == "gmm"):
        raise ConfigError(f"train.teacher={config.train.teacher}: distillation trains a command-recognition network "
                          f"by gradient descent, not task={config.task} or model.name={config.model.name}")
    if config.train.speaker_adversarial_weight > 0 and (config.task != "commands" or config.model.name == "gmm"):
        raise ConfigError(f"train.speaker_adversarial_weight={config.train.speaker_adversarial_weight}: speaker-adversarial "
                          f"training trains a command-recognition network by gradient descent, not task={config.task} "
                          f"or model.name={config.model.name}")
    if config.data.extra_train and config.task != "commands":
        raise ConfigError(f"data.extra_train={config.data.extra_train}: extra training clips are for task=commands, "
                          f"not task={config.task}")
    encoders = ASR_ENCODERS if config.task == "asr" else ENCODERS
    if config.model.name not in encoders:
        raise ConfigError(f"model.name={config.model.name} is not one of {', '.join(encoders)} (the models of task={config.task})")
    _check_front_end(config)
    return config


def _check_front_end(config: Config) -> None:
    # A model whose MODEL_DEFAULTS name a front end owns it: neither goes without the other.
    owned = {d["features"]["kind"]: name for name, d in MODEL_DEFAULTS.items() if "kind" in d.get("features", {})}
    owner = owned.get(config.features.kind)
    if (owner or config.model.name) != config.model.name or (config.model.name in owned.values() and owner is None):
        model = owner or config.model.name
        raise ConfigError(f"features.kind={config.features.kind} and model.name={config.model.name}: the {model} "
                          f"front end and model go together (model.name={model} sets both)")
    if config.features.finetune_layers and config.features.kind != "speech_embedding":
        raise ConfigError(f"features.finetune_layers={config.features.finetune_layers} fine-tunes a pretrained front end; "
                          f"features.kind={config.features.kind} has none (use model.name=speech_embedding)")


def _describe(error: OmegaConfBaseException, path) -> str:
    where = f"{path}: " if path else ""
    key = getattr(error, "full_key", None)
    return f"{where}{key + ': ' if key else ''}{str(error).splitlines()[0]}"


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """Resolve defaults, a YAML file and ``key=value`` overrides into a :class:`Config`.

    Parameters
    ----------
    path : str or Path, optional
        YAML file with any subset of the keys.
    overrides : sequence of str
        Dotted ``key=value`` pairs, e.g. ``train.max_epochs=20``.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        Missing file, unknown key, wrong type or out-of-range value; the message names it.
    """
    schema = OmegaConf.structured(Config)
    try:
        merged = schema
        if path is not None:
            path = Path(path)
            if not path.is_file():
                raise ConfigError(f"{path}: no such config file")
            merged = OmegaConf.merge(merged, OmegaConf.load(path))
        bad = [o for o in overrides if "=" not in o]
        if bad:
            raise ConfigError(f"override {bad[0]!r} is not key=value (e.g. train.max_epochs=20)")
        given = OmegaConf.from_dotlist(list(overrides))
        merged = OmegaConf.merge(merged, given)
        defaults = [TASK_DEFAULTS.get(merged.task), MODEL_DEFAULTS.get(merged.model.name)]
        if any(defaults):  # the task's and the model's defaults go under the file and the overrides
            layers = [schema] + [OmegaConf.create(d) for d in defaults if d]
            layers += [OmegaConf.load(path)] if path is not None else []
            merged = OmegaConf.merge(*layers, given)
        config = OmegaConf.to_object(merged)
    except OmegaConfBaseException as e:
        raise ConfigError(_describe(e, path)) from e
    return validate(config)


def with_model(config: Config, name: str, size: str = "") -> Config:
    """``config`` with another model, and the settings :data:`MODEL_DEFAULTS` gives that model.

    What ``model.name=NAME`` on the command line does, for a config already resolved (``audiorec
    bench models`` trains several models from one). The model's defaults replace the config's
    values for their keys.

    Raises
    ------
    ConfigError
        An unknown model or an invalid result, as :func:`validate`.
    """
    merged = OmegaConf.merge(OmegaConf.structured(config), {"model": {"name": name, "size": size}})
    if name in MODEL_DEFAULTS:
        merged = OmegaConf.merge(merged, MODEL_DEFAULTS[name])
    return validate(OmegaConf.to_object(merged))


def to_yaml(config: Config) -> str:
    """The config as YAML text (what ``config.yaml`` in a run directory holds)."""
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def config_from_yaml(text: str) -> Config:
    """Parse YAML text written by :func:`to_yaml` back into a :class:`Config`.

    Raises
    ------
    ConfigError
        As :func:`load_config`.
    """
    try:
        return validate(OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(Config), OmegaConf.create(text))))
    except OmegaConfBaseException as e:
        raise ConfigError(_describe(e, None)) from e
