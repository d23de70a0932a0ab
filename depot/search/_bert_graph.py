"""BERT's encoder as an ONNX graph for onnxruntime, over weights kept in memory.

The graph is built here, from the model's ``config.json``, rather than shipped: it names
every weight but holds none of them. :func:`load_session` reads the safetensors file and
hands the weights to onnxruntime as in-memory "external" initializers, so nothing is
downloaded, converted or written to disk, and torch is never involved.

onnxruntime's fused CPU kernels do most of the work (``com.microsoft`` contrib operators,
as its own BERT optimizer emits them): ``EmbedLayerNormalization`` (the three embeddings,
their sum and LayerNorm), ``Attention`` (QKV projection, masked softmax, context) and
``BiasGelu`` (bias and exact erf GELU); ONNX's own ``LayerNormalization`` does the rest.
Its matrix products use the widest SIMD the CPU has (AVX-512 on this Zen 5 machine, where
the OpenBLAS bundled with numpy falls back to its Haswell AVX2 kernels).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported where used: numpy takes about 15 MiB, which a server that never searches or
    # lists a large space need not hold (the idle memory target, docs/performance.md).
    import numpy as np
    import numpy.typing as npt
    import onnxruntime

__all__ = ["load_session"]

# IR 8 and opset 17 (2022) are old enough for any onnxruntime >= 1.14 to load, whichever
# newer version of the onnx package built the graph.
_IR_VERSION = 8
_OPSET = 17
_CONTRIB = "com.microsoft"


def _dense_add_norm(x: str, residual: str, prefix: str, out: str, eps: float) -> list[Any]:
    """LayerNorm(x @ W + b + residual): BERT's output of attention and of feed-forward."""
    from onnx import helper

    # NOTE: kept as MatMul, Add, Add, LayerNormalization on purpose: onnxruntime's fused
    # SkipLayerNormalization CPU kernel (what its optimizer would make of them at level
    # "extended" and above) took 4.2 ms a call here, against 0.7 ms for these four together.
    return [
        helper.make_node("MatMul", [x, f"{prefix}.dense.weight"], [f"{prefix}.y"]),
        helper.make_node("Add", [f"{prefix}.y", f"{prefix}.dense.bias"], [f"{prefix}.yb"]),
        helper.make_node("Add", [f"{prefix}.yb", residual], [f"{prefix}.sum"]),
        helper.make_node(
            "LayerNormalization",
            [f"{prefix}.sum", f"{prefix}.LayerNorm.weight", f"{prefix}.LayerNorm.bias"],
            [out],
            axis=-1,
            epsilon=eps,
        ),
    ]


def _graph(config: dict[str, Any], shapes: dict[str, tuple[int, ...]]) -> bytes:
    """The serialized model; every weight is an external initializer named as in ``shapes``."""
    from onnx import TensorProto, helper

    eps = float(config["layer_norm_eps"])
    heads = int(config["num_attention_heads"])
    nodes = [
        helper.make_node(
            "EmbedLayerNormalization",
            [
                "input_ids",
                "token_type_ids",
                "embeddings.word_embeddings.weight",
                "embeddings.position_embeddings.weight",
                "embeddings.token_type_embeddings.weight",
                "embeddings.LayerNorm.weight",
                "embeddings.LayerNorm.bias",
                "attention_mask",
            ],
            ["x0", "lengths"],
            domain=_CONTRIB,
            epsilon=eps,
        )
    ]
    x = "x0"
    for n in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{n}"
        nodes += [
            helper.make_node(
                "Attention",
                [x, f"{p}.qkv.weight", f"{p}.qkv.bias", "lengths"],
                [f"{p}.context"],
                domain=_CONTRIB,
                num_heads=heads,
            ),
            *_dense_add_norm(
                f"{p}.context",
                x,
                f"{p}.attention.output",
                f"{p}.h",
                eps,
            ),
            helper.make_node("MatMul", [f"{p}.h", f"{p}.intermediate.dense.weight"], [f"{p}.u"]),
            helper.make_node(
                "BiasGelu", [f"{p}.u", f"{p}.intermediate.dense.bias"], [f"{p}.g"], domain=_CONTRIB
            ),
            *_dense_add_norm(f"{p}.g", f"{p}.h", f"{p}.output", f"{p}.out", eps),
        ]
        x = f"{p}.out"
    nodes.append(helper.make_node("Identity", [x], ["hidden"]))
    initializers = []
    for name, shape in shapes.items():
        tensor = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=shape)
        tensor.data_location = TensorProto.EXTERNAL
        tensor.external_data.add(key="location", value="in-memory")  # given at session start
        initializers.append(tensor)
    graph = helper.make_graph(
        nodes,
        "bert",
        [
            helper.make_tensor_value_info(name, TensorProto.INT32, ["batch", "width"])
            for name in ("input_ids", "token_type_ids", "attention_mask")
        ],
        [
            helper.make_tensor_value_info(
                "hidden", TensorProto.FLOAT, ["batch", "width", int(config["hidden_size"])]
            )
        ],
        initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", _OPSET), helper.make_opsetid(_CONTRIB, 1)],
        ir_version=_IR_VERSION,
        producer_name="depot",
    )
    serialized: bytes = model.SerializeToString()
    return serialized


def _weights(folder: Path) -> dict[str, npt.NDArray[np.float32]]:
    """The safetensors weights, laid out as the graph's operators take them."""
    import numpy as np
    from safetensors.numpy import load_file

    tensors = load_file(str(folder / "model.safetensors"))
    weights: dict[str, npt.NDArray[np.float32]] = {}
    for name, tensor in tensors.items():
        if name.startswith("embeddings."):
            if name == "embeddings.position_ids":  # a buffer, not a weight
                continue
        elif not name.startswith("encoder.layer.") or ".attention.self." in name:
            continue  # the pooler is not used; query, key and value are merged below
        if name.startswith("encoder.layer.") and name.endswith("dense.weight"):
            tensor = tensor.T  # torch keeps (out, in); MatMul wants x @ (in, out)
        weights[name] = np.ascontiguousarray(tensor, dtype=np.float32)
    layer = 0
    while f"encoder.layer.{layer}.attention.self.query.weight" in tensors:
        p = f"encoder.layer.{layer}"
        parts = [f"{p}.attention.self.{part}" for part in ("query", "key", "value")]
        weights[f"{p}.qkv.weight"] = np.ascontiguousarray(
            np.concatenate([tensors[f"{part}.weight"].T for part in parts], axis=1),
            dtype=np.float32,
        )
        weights[f"{p}.qkv.bias"] = np.concatenate(
            [tensors[f"{part}.bias"] for part in parts]
        ).astype(np.float32)
        layer += 1
    return weights


def load_session(folder: Path, *, threads: int) -> onnxruntime.InferenceSession:
    """An onnxruntime session running the BERT model in ``folder`` on the CPU.

    Inputs: ``input_ids``, ``token_type_ids`` and ``attention_mask``, int32 ``(batch,
    width)``, right-padded (the mask is 1 on real tokens). Output: ``hidden``, float32
    ``(batch, width, hidden size)``, BERT's last hidden state.

    Args:
        folder: Holds ``config.json`` and ``model.safetensors``.
        threads: Threads of one forward pass.

    Raises:
        ValueError: The folder does not hold a BERT model with erf GELU activations.
    """
    import onnxruntime

    config: dict[str, Any] = json.loads((folder / "config.json").read_text())
    if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
        raise ValueError(f"{folder} does not hold a BERT model with (erf) GELU activations")
    weights = _weights(folder)
    model = _graph(config, {name: tensor.shape for name, tensor in weights.items()})
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # The graph is fused by hand already; see _dense_add_norm for what "extended" would undo.
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_BASIC
    # Idle pool threads sleep instead of spinning: the server's other work shares the cores.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # onnxruntime copies these into the session, so ours are freed when this returns.
    values = [onnxruntime.OrtValue.ortvalue_from_numpy(tensor) for tensor in weights.values()]
    options.add_external_initializers(list(weights), values)
    return onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
