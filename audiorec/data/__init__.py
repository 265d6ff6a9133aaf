"""Data: corpus import and validation (command and transcribed corpora), the manifest format, splits,
datasets, a synthetic corpus."""

from audiorec.data.corpora import ImportResult, ValidationConfig, import_corpus, scan_corpus
from audiorec.data.manifest import ManifestError, Utterance, read_manifest, write_manifest
from audiorec.data.splits import Split, loso_folds, speaker_split
from audiorec.data.transcribed import normalize_text, scan_transcribed

__all__ = [
    "ImportResult", "ManifestError", "Split", "Utterance", "ValidationConfig", "import_corpus",
    "loso_folds", "normalize_text", "read_manifest", "scan_corpus", "scan_transcribed", "speaker_split",
    "write_manifest",
]
