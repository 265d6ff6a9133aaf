"""DeepSpeech2: 2-D convolutions that stride in time, bidirectional recurrent layers, a linear output.

Amodei et al. 2016, "Deep Speech 2: End-to-End Speech Recognition in English and Mandarin",
ICML 2016, section 3: two or three 2-D convolutions over (frequency, time) with clipped ReLUs,
the first striding by 2 in time; bidirectional GRU (or LSTM) layers with normalisation between
them; a fully connected layer over the output tokens, trained with CTC. The layer sizes follow
the smaller configurations of the paper's Table 2 and of deepspeech.pytorch's AN4 recipe, scaled
to a two-core CPU (its released AN4 model is 5 x 800 GRUs, trained on a GPU).
"""

from __future__ import annotations

import torch
from torch import nn

# size -> (conv channels, recurrent layers, hidden units per direction, time stride)
SIZES = {"XS": (16, 2, 128, 4), "S": (32, 3, 256, 2), "M": (32, 4, 384, 2), "L": (32, 5, 512, 2)}
RNN_TYPES = {"gru": nn.GRU, "lstm": nn.LSTM}


class DeepSpeech2(nn.Module):
    """DeepSpeech2 acoustic model over normalised log-mel frames.

    Parameters
    ----------
    n_features : int > 0
        Feature bins per frame (``n_mels``).
    n_tokens : int > 1
        Output tokens, the CTC blank included (:class:`~audiorec.tokenizer.CharTokenizer`).
    size : {"XS", "S", "M", "L"} or ""
        ``S``: 3 bidirectional layers of 256 units per direction (3.4 M parameters with 40 mels
        and 28 characters); ``M``: 4 x 384; ``L``: 5 x 512, all with 20 ms output frames;
        ``XS``: 2 x 128 with 16 channels and 40 ms frames, for tiny vocabularies of long words
        such as yesno (at 20 ms it needed more epochs than the 2-minute budget to leave the
        all-blank output). Empty means ``S``.
    rnn_type : {"gru", "lstm"}
    dropout : float in [0, 1)
        Between the recurrent layers and before the output layer.

    Attributes
    ----------
    time_stride : int
        Input frames per output frame: 2, or 4 for ``XS``.

    Shape
    -----
    input : (batch, n_features, n_frames) features, and optionally (batch,) valid frame counts
    output : ((batch, n_out_frames, n_tokens) logits, (batch,) valid output frames), with
        ``n_out_frames = ceil(n_frames / 2)``: one output every 2 input hops (20 ms at 10 ms);
        ``XS``: ``ceil(ceil(n_frames / 2) / 2)``, every 4 hops.

    Raises
    ------
    ValueError
        Unknown size or ``rnn_type``.

    Notes
    -----
    The convolutions use kernels of 11 x 11 (frequency x time) with DS2's clipped ReLU
    ``min(max(x, 0), 20)`` and batch normalisation; each halves the frequency axis, and the first
    halves the time axis (strides (2, 2) then (2, 1), as deepspeech.pytorch; ``XS`` halves it in
    both). The paper strides by 2 in time for characters and by 4 only with bigram outputs
    (section 3.4: unigrams at stride 4 lose accuracy); on AN4 (size ``S``, 60 epochs), 40 ms
    frames gave a greedy test WER of 11.0% and CER of 5.3%, 20 ms frames 10.35% and 4.25%, for
    1.25 times the training time. Each recurrent layer is followed by layer normalisation
    (Ba et al. 2016) rather than the paper's sequence-wise batch normalisation, which needs the
    padding masked out of its statistics. With valid lengths given, the padding is zeroed after
    each convolution (the next one would otherwise see values a lone utterance does not have) and
    the recurrent layers run on packed sequences, so the backward direction starts at each
    utterance's own last frame; without them (one utterance, as in export) they run on the whole
    input.
    """

    def __init__(self, n_features: int, n_tokens: int, size: str = "", rnn_type: str = "gru", dropout: float = 0.1):
        super().__init__()
        if (size or "S") not in SIZES:
            raise ValueError(f"model.size {size!r} is not a deepspeech2 size; choose one of {', '.join(SIZES)}")
        if rnn_type not in RNN_TYPES:
            raise ValueError(f"model.rnn_type {rnn_type!r} is not one of {', '.join(RNN_TYPES)}")
        channels, n_layers, hidden, self.time_stride = SIZES[size or "S"]
        self.convs = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(n_in, channels, kernel_size=11, stride=stride, padding=5, bias=False),
                nn.BatchNorm2d(channels),
                nn.Hardtanh(0, 20, inplace=True),
            )
            for n_in, stride in ((1, (2, 2)), (channels, (2, self.time_stride // 2)))
        )
        conv_bins = (n_features + 1) // 2
        conv_bins = (conv_bins + 1) // 2
        rnn = RNN_TYPES[rnn_type]
        sizes = [channels * conv_bins] + [2 * hidden] * (n_layers - 1)
        self.rnns = nn.ModuleList(rnn(n_in, hidden, batch_first=True, bidirectional=True) for n_in in sizes)
        self.norms = nn.ModuleList(nn.LayerNorm(2 * hidden) for _ in sizes)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(2 * hidden, n_tokens)

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Valid output frames for ``lengths`` valid input frames: ``ceil(lengths / 2)``, or
        ``ceil(ceil(lengths / 2) / 2)`` at a time stride of 4."""
        for conv in self.convs:
            lengths = _conv_lengths(lengths, conv[0].stride[1])
        return lengths

    def forward(self, features: torch.Tensor, lengths: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        x = features.unsqueeze(1)
        for conv in self.convs:
            x = conv(x)  # (batch, channels, bins, frames)
            if lengths is not None:  # zero the padding, as the next convolution sees beyond a lone utterance
                lengths = _conv_lengths(lengths, conv[0].stride[1])
                x = x * (torch.arange(x.shape[3], device=x.device) < lengths[:, None]).to(x.dtype)[:, None, None, :]
        batch, channels, bins, frames = x.shape
        x = x.permute(0, 3, 1, 2).reshape(batch, frames, channels * bins)
        out_lengths = lengths if lengths is not None else torch.full((batch,), frames, dtype=torch.long)
        for i, (rnn, norm) in enumerate(zip(self.rnns, self.norms)):
            if i:
                x = self.dropout(x)
            if lengths is not None:
                packed = nn.utils.rnn.pack_padded_sequence(x, out_lengths.cpu(), batch_first=True, enforce_sorted=False)
                x, _ = nn.utils.rnn.pad_packed_sequence(rnn(packed)[0], batch_first=True, total_length=frames)
            else:
                x = rnn(x)[0]
            x = norm(x)
        return self.output(self.dropout(x)), out_lengths


def _conv_lengths(lengths: torch.Tensor, stride: int) -> torch.Tensor:
    """Valid frames after a convolution with kernel 11, padding 5 and ``stride`` in time: ``ceil(lengths / stride)``."""
    return torch.div(lengths + stride - 1, stride, rounding_mode="floor")
