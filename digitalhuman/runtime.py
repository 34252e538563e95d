"""ONNX as the package makes and runs it: graphs from PyTorch modules (``torch_to_onnx``), and
onnxruntime sessions on the CPU, sequential, on a fixed number of threads (``session``).

The base voice and the face generator run through onnxruntime. For the face this is what makes it
both fast and deterministic: onnxruntime's CPU convolutions give the same bytes for any thread count
and batch size (measured on the shipped face generator: 1 and 2 threads, batches 1, 7 and 64, all
the same bytes), where PyTorch's float32 convolutions round differently with the thread count and
the batch (a few pixels one level off per face), and its float64 ones are about 6x slower.
"""

from __future__ import annotations

import io
import warnings

__all__ = ["session", "torch_to_onnx", "OPSET", "MIN_OPSET"]

OPSET = 17
MIN_OPSET = 15  # lowest opset tested here; also the newest that Unity Sentis documents


def session(model: bytes | str, threads: int = 1, *, arena: bool = True):
    """A CPU session for ``model`` (ONNX bytes or a file path) on ``threads`` intra-op threads.

    ``arena=False`` lets go of buffers after each run (for graphs whose largest buffers depend on
    the input's length, like the voice's)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3
    opts.enable_cpu_mem_arena = arena
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def torch_to_onnx(module, args: tuple, inputs: list[str], outputs: list[str], shapes: dict[str, list],
                   opset: int = OPSET) -> bytes:
    """TorchScript-based export (``dynamo=False``: the dynamo exporter needs ``onnxscript``), then
    the graph's input/output shapes are set to ``shapes`` (names for dynamic axes, ints for fixed)."""
    import onnx
    import torch

    from . import __version__

    buf = io.BytesIO()
    with warnings.catch_warnings():
        # The legacy exporter is deprecated, and the shape asserts in forward() are traced as constants.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(module, args, buf, input_names=inputs, output_names=outputs, opset_version=opset,
                          dynamic_axes={n: {0: shapes[n][0]} for n in inputs + outputs}, do_constant_folding=True,
                          dynamo=False)
    model = onnx.load_from_string(buf.getvalue())
    for vi in list(model.graph.input) + list(model.graph.output):
        if vi.name in shapes:
            dims = vi.type.tensor_type.shape.dim
            assert len(dims) == len(shapes[vi.name]), (vi.name, len(dims), shapes[vi.name])
            for d, want in zip(dims, shapes[vi.name]):
                if isinstance(want, str):
                    d.dim_param = want
                else:
                    d.dim_value = int(want)
    model.producer_name = "digitalhuman"
    model.producer_version = __version__
    onnx.checker.check_model(model)
    return model.SerializeToString()
