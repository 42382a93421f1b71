"""Circuit compression of trained models: gate pruning, merging, angle quantization (post-training
and quantization-aware fine-tuning), and the report of what it saves on a named device.

>>> from qllm.compress import compress_model, prune_spec, load_compressed  # doctest: +SKIP
"""

from qllm.compress.apply import (
    compress_model,
    compress_spec,
    finetune,
    load_compressed,
    save_compressed,
    spec_from_dict,
    spec_to_dict,
)
from qllm.compress.prune import PruneResult, prune_spec
from qllm.compress.quantize import attach_ste, detach_ste
from qllm.compress.report import format_table, layer_rows, model_row

__all__ = ["compress_model", "compress_spec", "finetune", "load_compressed", "save_compressed",
           "spec_from_dict", "spec_to_dict", "PruneResult", "prune_spec", "attach_ste",
           "detach_ste", "format_table", "layer_rows", "model_row"]
