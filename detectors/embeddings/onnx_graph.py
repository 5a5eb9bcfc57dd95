"""Build the all-MiniLM-L6-v2 sentence encoder as an ONNX graph straight from ``model.safetensors``.

No torch and no exporter: the BERT encoder is written out with ``onnx.helper`` (opset 17,
standard ops only, laid out the way onnxruntime's optimiser expects), then fused once with
onnxruntime's transformer optimiser (Attention, SkipLayerNormalization, BiasGelu) and, for
``int8``, dynamically quantised. The graph takes ``input_ids`` and ``attention_mask`` (int64,
``[batch, seq]``), assumes ``token_type_ids`` are all zero (one sentence per input), and
returns ``sentence_embedding`` ``[batch, hidden]``: attention-masked mean pooling followed by
L2 normalisation, exactly what sentence-transformers does for this model.

The built graphs are cached under ``$LLMWATCH_CACHE/models`` (default ``~/.cache/llmwatch``),
keyed by the safetensors hash and :data:`BUILDER_VERSION`::

    >>> from detectors.embeddings.onnx_graph import cached_model_path
    >>> cached_model_path("int8").suffix          # builds on first call (a few seconds)
    '.onnx'
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from .model_files import model_dir

Precision = Literal["fp32", "int8"]

#: Bump when the graph (or quantisation recipe) changes, so stale cached files are not reused.
BUILDER_VERSION = "4"
OPSET = 17


@dataclass(frozen=True)
class BertConfig:
    layers: int = 6
    hidden: int = 384
    heads: int = 12
    intermediate: int = 1536
    eps: float = 1e-12
    max_position: int = 512

    @classmethod
    def from_json(cls, path: Path) -> "BertConfig":
        cfg = json.loads(path.read_text())
        if cfg.get("hidden_act", "gelu") != "gelu":
            raise ValueError(f"unsupported activation {cfg.get('hidden_act')!r} (only exact erf GELU)")
        return cls(
            layers=cfg["num_hidden_layers"],
            hidden=cfg["hidden_size"],
            heads=cfg["num_attention_heads"],
            intermediate=cfg["intermediate_size"],
            eps=float(cfg.get("layer_norm_eps", 1e-12)),
            max_position=cfg.get("max_position_embeddings", 512),
        )


def cache_root() -> Path:
    """``$LLMWATCH_CACHE`` or ``~/.cache/llmwatch``."""
    return Path(os.environ.get("LLMWATCH_CACHE") or Path.home() / ".cache" / "llmwatch")


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def load_weights(path: Path) -> dict[str, np.ndarray]:
    """safetensors -> float32 numpy arrays, names without a leading ``bert.`` prefix."""
    from safetensors.numpy import load_file

    weights = load_file(str(path))
    return {k.removeprefix("bert."): v.astype(np.float32) for k, v in weights.items()}


class _GraphBuilder:
    """Small helper that names nodes and initializers uniquely."""

    def __init__(self) -> None:
        self.nodes: list = []
        self.inits: list = []
        self._n = 0

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def op(self, op_type: str, inputs: list[str], name_hint: str = "", **attrs) -> str:
        from onnx import helper

        self._n += 1
        out = f"{name_hint or op_type.lower()}_{self._n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{op_type}_{self._n}", **attrs))
        return out

    def linear(self, x: str, w: np.ndarray, b: np.ndarray, prefix: str) -> str:
        # torch Linear stores [out, in]; MatMul wants [in, out].
        y = self.op("MatMul", [x, self.const(f"{prefix}.weight_t", w.T)], prefix + "_mm")
        return self.op("Add", [y, self.const(f"{prefix}.bias", b)], prefix + "_out")

    def layer_norm(self, x: str, g: np.ndarray, b: np.ndarray, prefix: str, eps: float) -> str:
        return self.op(
            "LayerNormalization",
            [x, self.const(f"{prefix}.gamma", g), self.const(f"{prefix}.beta", b)],
            prefix + "_ln",
            axis=-1,
            epsilon=eps,
        )


def build_model(weights: dict[str, np.ndarray], cfg: BertConfig):
    """The fp32 ``onnx.ModelProto`` for a BERT sentence encoder with mean pooling + L2 norm."""
    from onnx import TensorProto, helper

    g = _GraphBuilder()
    W = weights
    head_dim = cfg.hidden // cfg.heads
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731

    # Embeddings: word + position + token type 0 (folded into the position table).
    word = g.op("Gather", [g.const("word_embeddings", W["embeddings.word_embeddings.weight"]), "input_ids"], "word")
    pos_table = W["embeddings.position_embeddings.weight"] + W["embeddings.token_type_embeddings.weight"][0]
    # Position rows 0..seq-1 as a Slice of the table: (a Shape->Gather->Range chain trips an
    # onnxruntime 1.32 rewrite into an invalid Slice).
    seq_len = g.op("Shape", ["input_ids"], "seq_len", start=1, end=2)
    zero = g.const("zero_1d", i64(0))
    pos = g.op("Slice", [g.const("position_embeddings", pos_table), zero, seq_len, zero], "pos")
    x = g.op("Add", [word, pos], "emb_sum")
    x = g.layer_norm(x, W["embeddings.LayerNorm.weight"], W["embeddings.LayerNorm.bias"], "emb", cfg.eps)

    # Additive attention mask [batch, 1, 1, seq]: 0 where attended, a large negative elsewhere.
    # Unsqueeze, Unsqueeze, Cast, Sub, Mul: the exact chain onnxruntime's attention fusion matches.
    mask4 = g.op("Unsqueeze", ["attention_mask", g.const("axis1", i64(1))], "mask3d")
    mask4 = g.op("Unsqueeze", [mask4, g.const("axis2", i64(2))], "mask4d")
    mask4 = g.op("Cast", [mask4], "mask4f", to=TensorProto.FLOAT)
    inv = g.op("Sub", [g.const("one_f", np.array(1.0, dtype=np.float32)), mask4], "mask_inv")
    bias = g.op("Mul", [inv, g.const("neg_big", np.array(-10000.0, dtype=np.float32))], "mask_bias")

    split_heads = g.const("split_heads_shape", i64(0, 0, cfg.heads, head_dim))
    merge_heads = g.const("merge_heads_shape", i64(0, 0, cfg.hidden))
    scale = g.const("attn_scale", np.array(math.sqrt(head_dim), dtype=np.float32))
    half = g.const("half", np.array(0.5, dtype=np.float32))
    one = g.const("one", np.array(1.0, dtype=np.float32))
    sqrt2 = g.const("sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))

    for i in range(cfg.layers):
        p = f"encoder.layer.{i}."
        q = g.linear(x, W[p + "attention.self.query.weight"], W[p + "attention.self.query.bias"], f"l{i}.q")
        k = g.linear(x, W[p + "attention.self.key.weight"], W[p + "attention.self.key.bias"], f"l{i}.k")
        v = g.linear(x, W[p + "attention.self.value.weight"], W[p + "attention.self.value.bias"], f"l{i}.v")
        q = g.op("Transpose", [g.op("Reshape", [q, split_heads])], f"l{i}.qh", perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, split_heads])], f"l{i}.kh", perm=[0, 2, 3, 1])
        v = g.op("Transpose", [g.op("Reshape", [v, split_heads])], f"l{i}.vh", perm=[0, 2, 1, 3])
        scores = g.op("Div", [g.op("MatMul", [q, k]), scale], f"l{i}.scores")
        probs = g.op("Softmax", [g.op("Add", [scores, bias])], f"l{i}.probs", axis=-1)
        ctx = g.op("Transpose", [g.op("MatMul", [probs, v])], f"l{i}.ctx_t", perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, merge_heads], f"l{i}.ctx")
        attn = g.linear(ctx, W[p + "attention.output.dense.weight"], W[p + "attention.output.dense.bias"], f"l{i}.ao")
        x = g.layer_norm(g.op("Add", [attn, x]), W[p + "attention.output.LayerNorm.weight"],
                         W[p + "attention.output.LayerNorm.bias"], f"l{i}.attn", cfg.eps)

        h = g.linear(x, W[p + "intermediate.dense.weight"], W[p + "intermediate.dense.bias"], f"l{i}.ff1")
        # Exact GELU, x * 0.5 * (1 + erf(x / sqrt 2)): the pattern onnxruntime fuses into Gelu.
        erf = g.op("Erf", [g.op("Div", [h, sqrt2])])
        h = g.op("Mul", [g.op("Mul", [h, g.op("Add", [erf, one])]), half], f"l{i}.gelu")
        out = g.linear(h, W[p + "output.dense.weight"], W[p + "output.dense.bias"], f"l{i}.ff2")
        x = g.layer_norm(g.op("Add", [out, x]), W[p + "output.LayerNorm.weight"],
                         W[p + "output.LayerNorm.bias"], f"l{i}.out", cfg.eps)

    # Mean pooling over attended tokens, then L2 normalisation (sentence-transformers' recipe).
    mask_f = g.op("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    m3 = g.op("Unsqueeze", [mask_f, g.const("pool_axes", i64(2))], "mask3")
    summed = g.op("ReduceSum", [g.op("Mul", [x, m3]), g.const("seq_axis", i64(1))], "summed", keepdims=0)
    count = g.op("ReduceSum", [m3, g.const("seq_axis2", i64(1))], "count", keepdims=0)
    count = g.op("Max", [count, g.const("count_eps", np.array(1e-9, dtype=np.float32))], "count_c")
    mean = g.op("Div", [summed, count], "mean")
    norm = g.op("ReduceL2", [mean], "norm", axes=[1], keepdims=1)  # axes is an attribute until opset 18
    norm = g.op("Max", [norm, g.const("norm_eps", np.array(1e-12, dtype=np.float32))], "norm_c")
    g.nodes.append(helper.make_node("Div", [mean, norm], ["sentence_embedding"], name="l2_normalise"))

    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"]),
        ],
        [helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", cfg.hidden])],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="llmwatch")
    model.ir_version = 8  # readable by onnxruntime >= 1.14
    import onnx

    onnx.checker.check_model(model)
    return model


def fuse_for_onnxruntime(model, cfg: BertConfig):
    """Fuse attention, SkipLayerNorm and BiasGelu with onnxruntime's transformer optimiser.

    onnxruntime's session-time optimiser does not fuse this attention pattern into its
    ``Attention`` kernel; the offline optimiser (``onnxruntime.transformers``, shipped with
    onnxruntime) does. ``opt_level=0`` keeps the result hardware-independent.
    """
    import logging

    from onnxruntime.transformers.optimizer import optimize_model

    logging.getLogger("onnxruntime.transformers").setLevel(logging.ERROR)  # "producer not matched"
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "plain.onnx"
        onnx.save_model(model, src)
        fused = optimize_model(str(src), model_type="bert", num_heads=cfg.heads, hidden_size=cfg.hidden, opt_level=0)
        # save_model_to_file also adds the com.microsoft opset import the fused ops need.
        fused.save_model_to_file(str(src))
        return onnx.load(str(src))


def _int8_excluded(model) -> list[str]:
    """MatMuls kept in fp32: every FFN down-projection and all of layer 0.

    Dynamic quantisation scales activations per tensor; the post-GELU input of the FFN
    down-projection has outliers that wreck that scale, and layer 0 feeds everything after it.
    Min cosine to the reference on 300 eval texts: all MatMuls 0.958, FFN-down kept 0.980,
    FFN-down and layer 0 kept 0.981-0.984 (mean 0.997).
    """
    keep = []
    for node in model.graph.node:
        if node.op_type == "MatMul" and any(
            o.startswith("l0.") or ".ff2_mm" in o for o in node.output
        ):
            keep.append(node.name)
    return keep


def quantize_int8(fp32_path: Path, out_path: Path) -> None:
    """Dynamic int8 quantisation (QInt8 weights, per output channel) of the MatMul weights.

    The embedding tables (Gather) and the fused Attention stay fp32: quantising them costs
    quality (Attention -> QAttention: min cosine 0.96) and buys little on this model.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32_path),
        str(out_path),
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=_int8_excluded(onnx.load(str(fp32_path), load_external_data=False)),
        # Shape inference cannot type the outputs of the fused com.microsoft ops.
        extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def _atomic_save(model, path: Path) -> None:
    import onnx

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        onnx.save_model(model, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cached_model_path(precision: Precision = "int8", model_path: Path | None = None) -> Path:
    """Path of the built ``.onnx`` for ``precision``, building (and caching) it if needed."""
    if precision not in ("fp32", "int8"):
        raise ValueError(f"precision must be 'fp32' or 'int8', not {precision!r}")
    folder = model_path or model_dir()
    st = folder / "model.safetensors"
    key = f"minilm-{file_sha256(st)[:16]}-v{BUILDER_VERSION}"
    out_dir = cache_root() / "models"
    fp32 = out_dir / f"{key}-fp32.onnx"
    if not fp32.is_file():
        cfg = BertConfig.from_json(folder / "config.json")
        _atomic_save(fuse_for_onnxruntime(build_model(load_weights(st), cfg), cfg), fp32)
    if precision == "fp32":
        return fp32
    int8 = out_dir / f"{key}-int8.onnx"
    if not int8.is_file():
        fd, tmp = tempfile.mkstemp(dir=out_dir, suffix=".onnx.tmp")
        os.close(fd)
        try:
            quantize_int8(fp32, Path(tmp))
            os.chmod(tmp, 0o644)
            os.replace(tmp, int8)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return int8
