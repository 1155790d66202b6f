"""Training data: indexing (folders, manifests, sidecars, skipped files), segments, the SAGA-SR dataset and
Qwen2-Audio captions for the sidecars (`caption`, imported where used: it needs transformers)."""

from saga_sr.data.dataset import SAGASRDataset, collate, compose_prompt
from saga_sr.data.index import AudioEntry, IndexResult, build_index, read_manifest, write_skipped_report

__all__ = [
    "SAGASRDataset",
    "collate",
    "compose_prompt",
    "AudioEntry",
    "IndexResult",
    "build_index",
    "read_manifest",
    "write_skipped_report",
]
