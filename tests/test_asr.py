"""Continuous speech recognition: the DeepSpeech2 model, batching, config, split, training on
yesno, transcription (run directory and exported ONNX) and its bad-input behaviour."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from audiorec.config import ConfigError, load_config
from audiorec.data.dataset import BucketBatchSampler, UtteranceDataset, collate_utterances
from audiorec.data.manifest import Utterance
from audiorec.models import build_asr_model, count_parameters
from audiorec.models.deepspeech2 import DeepSpeech2
from audiorec.runtime import ModelError, Recognizer, Transcriber
from audiorec.train import asr_split

from conftest import run_without_train_extra, shared_dataset

# Seconds-long training: the smallest model, 5 yesno files, 2 epochs.
QUICK_ASR = ["task=asr", "model.size=XS", "train.max_epochs=2", "data.batch_size=2", "train.accelerator=cpu",
             "train.num_workers=0"]


def test_deepspeech2_shapes_and_lengths():
    model = DeepSpeech2(n_features=40, n_tokens=28, size="XS").eval()
    features = torch.randn(3, 40, 301)
    logits, lengths = model(features, torch.tensor([301, 200, 9]))
    assert logits.shape == (3, 76, 28)  # XS: 301 frames -> 151 -> 76 (40 ms at a 10 ms hop)
    assert lengths.tolist() == [76, 50, 3]
    logits, lengths = model(features)
    assert lengths.tolist() == [76, 76, 76]
    model = DeepSpeech2(n_features=40, n_tokens=28, size="S").eval()
    logits, lengths = model(features, torch.tensor([301, 200, 9]))
    assert logits.shape == (3, 151, 28) and model.time_stride == 2  # 301 frames -> 151 (20 ms)
    assert lengths.tolist() == [151, 100, 5] and model.output_lengths(torch.tensor([9])).tolist() == [5]
    with pytest.raises(ValueError, match="deepspeech2 size"):
        DeepSpeech2(40, 28, size="XXL")
    with pytest.raises(ValueError, match="rnn_type"):
        DeepSpeech2(40, 28, rnn_type="transformer")


def test_sizes_grow():
    counts = [count_parameters(DeepSpeech2(40, 28, size=s)) for s in ("XS", "S", "M", "L")]
    assert counts == sorted(counts) and counts[0] < 1_000_000 < 3_000_000 < counts[1]


def test_padded_batch_matches_utterances_alone():
    """Masked normalisation, zeroed convolution padding and packed recurrent layers: an utterance
    in a padded batch gives what it gives alone, except near its end, where the STFT window of
    the last frame reaches into the padding instead of the reflected signal."""
    torch.manual_seed(0)
    model = build_asr_model(load_config(None, ["task=asr", "model.size=XS"]), 28).eval()
    waves = torch.randn(3, 48_000) * 0.1
    lengths = torch.tensor([48_000, 30_000, 17_000])
    with torch.no_grad():
        batch, out_lengths = model(waves, lengths)
        for i in range(3):
            alone, n = model(waves[i : i + 1, : lengths[i]])
            assert alone.shape[1] == out_lengths[i]
            if i == 0:
                torch.testing.assert_close(alone[0], batch[0], atol=1e-5, rtol=0)
            else:  # the middle frames barely move; the probabilities are close everywhere
                assert (alone[0].exp() - batch[i, : alone.shape[1]].exp()).abs().max() < 0.05


def test_bucket_sampler_sortagrad_then_shuffled_buckets():
    durations = np.random.default_rng(0).uniform(1, 5, 50)
    sampler = BucketBatchSampler(durations, batch_size=8, seed=3)
    first = list(sampler)
    assert len(first) == len(sampler) == 7
    flat = [i for b in first for i in b]
    assert sorted(flat) == list(range(50))
    assert flat == np.argsort(durations, kind="stable").tolist()  # SortaGrad: shortest first
    sampler.set_epoch(1)
    second = list(sampler)
    assert sorted(i for b in second for i in b) == list(range(50))
    assert second != first
    spans = [np.ptp(durations[b]) for b in second]
    assert np.mean(spans) < 0.5 * np.ptp(durations)  # similar lengths share a batch
    again = BucketBatchSampler(durations, batch_size=8, seed=3)
    again.set_epoch(1)
    assert list(again) == second
    with pytest.raises(ValueError, match="batch_size"):
        BucketBatchSampler(durations, batch_size=0)


def test_collate_pads_and_concatenates_targets():
    data = UtteranceDataset([np.ones(5, np.float32), np.ones(3, np.float32)], [[2, 3], [4]], ["ab", "c"])
    waves, lengths, targets, target_lengths, texts = collate_utterances([data[0], data[1]])
    assert waves.shape == (2, 5) and waves[1, 3:].abs().sum() == 0
    assert lengths.tolist() == [5, 3] and targets.tolist() == [2, 3, 4] and target_lengths.tolist() == [2, 1]
    assert texts == ["ab", "c"]
    with pytest.raises(ValueError, match="2 waveforms, 1 targets"):
        UtteranceDataset([np.ones(5), np.ones(3)], [[1]], ["a", "b"])


def test_task_defaults_sit_under_file_and_overrides(tmp_path):
    commands = load_config()
    asr = load_config(None, ["task=asr"])
    assert (commands.model.name, asr.model.name) == ("cnn", "deepspeech2")
    assert asr.train.label_smoothing == 0 and asr.augment.time_shift.p == 0
    assert load_config(None, ["task=asr", "model.size=M"]).model.size == "M"
    config_file = tmp_path / "asr.yaml"
    config_file.write_text("task: asr\ndata:\n  batch_size: 5\n")
    from_file = load_config(config_file, ["train.lr=0.01"])
    assert (from_file.model.name, from_file.data.batch_size, from_file.train.lr) == ("deepspeech2", 5, 0.01)
    with pytest.raises(ConfigError, match="model.name=cnn is not one of deepspeech2"):
        load_config(None, ["task=asr", "model.name=cnn"])
    with pytest.raises(ConfigError, match="task=dictation is not one of commands, asr"):
        load_config(None, ["task=dictation"])


def _utt(path, speaker, subset=None):
    return Utterance(path=path, duration=1.0, sample_rate=16000, speaker=speaker, text="a b", subset=subset)


def test_split_uses_the_corpus_test_subset():
    utts = [_utt(f"/{s}/{i}.wav", s, "train") for s in "abcdefghij" for i in range(3)]
    utts += [_utt(f"/t{s}/{i}.wav", f"t{s}", "test") for s in "xy" for i in range(2)]
    split = asr_split(utts, load_config(None, ["task=asr", "data.val_fraction=0.2"]))
    assert {u.subset for u in split.test} == {"test"} and len(split.test) == 4
    assert len(split.val) == 6 and not split.speakers("val") & split.speakers("train")
    assert len(split.train) + len(split.val) == 30


def test_split_of_one_speaker_is_by_file():
    utts = [_utt(f"/yesno/{i}.wav", "yesno") for i in range(20)]
    with pytest.warns(UserWarning, match="splitting by file"):
        split = asr_split(utts, load_config(None, ["task=asr"]))
    assert len(split.val) == len(split.test) == 2 and len(split.train) == 16
    assert {u.speaker for u in split.test} == {"yesno"}  # the speaker survives in the manifests
    assert not {u.path for u in split.test} & {u.path for u in split.train}


@pytest.fixture(scope="module")
def yesno_run(tmp_path_factory):
    """A seconds-long training on 5 yesno files through the command line (3 train, 1 val, 1 test)."""
    root = tmp_path_factory.mktemp("yesno5")
    for path in sorted(shared_dataset("yesno").glob("*.wav"))[:5]:
        shutil.copy(path, root / path.name)
    out = root / "run"
    subprocess.run([sys.executable, "-m", "audiorec.cli", "train", "--data", str(root), "--out", str(out), "--quiet",
                    "data.val_fraction=0.2", "data.test_fraction=0.2", *QUICK_ASR], check=True)
    return out


def test_training_writes_a_speech_recognition_run(yesno_run):
    metrics = json.loads((yesno_run / "metrics.json").read_text())
    assert (metrics["n_train"], metrics["n_val"], metrics["n_test"]) == (3, 1, 1)
    assert metrics["n_words"] == 8 and metrics["epochs"] == 2
    assert metrics["substitutions"] + metrics["deletions"] + metrics["insertions"] == round(metrics["wer"] * 8)
    assert 0 < metrics["rtf"] < 1
    tokenizer = json.loads((yesno_run / "tokenizer.json").read_text())
    assert tokenizer["vocab"][:2] == ["<blank>", "|"] and set(tokenizer["vocab"][2:]) == set("yesno")
    (line,) = (yesno_run / "transcripts.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert len(record["reference"].split()) == 8 and set(record["reference"].split()) <= {"yes", "no"}
    assert (yesno_run / "checkpoints" / "best.ckpt").is_file() and (yesno_run / "training_curves.png").is_file()


def test_early_stopping_waits_out_the_ctc_plateau(tmp_path):
    """CTC starts with every output blank (WER 100%) while the loss falls; stopping is on the loss."""
    root = tmp_path / "yesno5"
    root.mkdir()
    for path in sorted(shared_dataset("yesno").glob("*.wav"))[:5]:
        shutil.copy(path, root / path.name)
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "audiorec.cli", "train", "--data", str(root), "--out", str(out), "--quiet",
                    "data.val_fraction=0.2", "data.test_fraction=0.2", *QUICK_ASR, "train.max_epochs=4",
                    "train.patience=1"], check=True)
    rows = [row for row in csv.DictReader((out / "logs" / "version_0" / "metrics.csv").open()) if row["val_wer"]]
    wers = [float(row["val_wer"]) for row in rows]
    losses = [float(row["val_loss"]) for row in rows]
    assert wers[1] >= wers[0], "the WER improved at once: this run does not show the plateau"
    # With patience 1, stopping on the WER would end after epoch 1; stopping on the loss ends at the first epoch
    # whose loss is no lower than the best before it (Lightning's EarlyStopping rule), or at max_epochs.
    stop = next((i + 1 for i in range(1, len(losses)) if losses[i] >= min(losses[:i])), 4)
    assert losses[1] < losses[0], "the loss did not fall in the first epoch: the run shows nothing"
    assert len(rows) == stop >= 3 and json.loads((out / "metrics.json").read_text())["epochs"] == stop


@pytest.fixture(scope="module")
def yesno_onnx(yesno_run, tmp_path_factory):
    from audiorec.export import export_run

    return export_run(yesno_run, tmp_path_factory.mktemp("export") / "yesno.onnx", progress=False)


def test_transcribe_run_and_onnx_agree(yesno_run, yesno_onnx):
    report = yesno_onnx
    assert report.n_clips == 1 and report.parity_max_abs_diff < 1e-3 and report.parity_top1_agreement == 1.0
    assert report.wer_onnx == report.wer_torch
    clip = next(iter(sorted(shared_dataset("yesno").glob("*.wav"))))
    from_run = Transcriber.load(yesno_run).transcribe_file(clip)
    onnx = Transcriber.load(report.model, threads=1)
    from_onnx = onnx.transcribe_file(clip)
    assert from_onnx.text == from_run.text
    assert onnx.frame_s == pytest.approx(0.04)
    assert all(0 <= w.start_s <= w.end_s <= from_onnx.duration_s for w in from_onnx.words)
    with pytest.raises(ModelError, match="use 'audiorec transcribe'"):
        Recognizer.load(report.model)
    with pytest.raises(ValueError, match="8000 Hz"):
        onnx.transcribe(np.zeros(8000, np.float32), sample_rate=8000)


def test_transcription_runs_without_torch(yesno_onnx):
    """The exported model transcribes in a subprocess where torch, jiwer and sentencepiece cannot be imported."""
    clip = str(next(iter(sorted(shared_dataset("yesno").glob("*.wav")))))
    expected = Transcriber.load(yesno_onnx.model).transcribe_file(clip).text
    done = run_without_train_extra(f"""
        from audiorec.cli import main
        code = main(["transcribe", {yesno_onnx.model!r}, {clip!r}, "--json", "--threads", "1"])
        assert not any(m.split(".")[0] in BLOCKED for m in sys.modules)
        sys.exit(code)
    """)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["text"] == expected and result["path"] == clip


def test_transcribe_cli_bad_input(yesno_run, tmp_path):
    clip = next(iter(sorted(shared_dataset("yesno").glob("*.wav"))))
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    result = subprocess.run([sys.executable, "-m", "audiorec.cli", "transcribe", str(yesno_run), str(clip),
                             str(broken), str(tmp_path / "missing.wav"), "--json"], capture_output=True, text=True)
    assert result.returncode == 1
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["path"] for line in lines] == [str(clip), str(broken), str(tmp_path / "missing.wav")]
    assert "text" in lines[0] and "error" in lines[1] and "error" in lines[2]
    assert str(broken) in result.stderr and "missing.wav" in result.stderr
    wrong = subprocess.run([sys.executable, "-m", "audiorec.cli", "recognize", str(yesno_run), str(clip)],
                           capture_output=True, text=True)
    assert wrong.returncode == 2 and "use 'audiorec transcribe'" in wrong.stderr


def test_transcriber_refuses_a_command_model(trained_run):
    with pytest.raises(Exception, match="command-recognition run; use 'audiorec recognize'"):
        Transcriber.load(trained_run[0])


@pytest.mark.slow
def test_yesno_recipe_reaches_zero_wer(tmp_path):
    """The yesno target: the configs/asr_yesno.yaml recipe transcribes held-out files without error."""
    from audiorec.train import train

    config = load_config(Path(__file__).resolve().parents[1] / "configs" / "asr_yesno.yaml", ["train.accelerator=cpu"])
    metrics = train(shared_dataset("yesno"), tmp_path / "run", config, progress=False)
    assert metrics["n_test"] == 6 and metrics["n_words"] == 48
    assert metrics["wer"] == 0.0
