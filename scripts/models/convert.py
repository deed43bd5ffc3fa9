#!/usr/bin/env python3
"""Convert one TensorFlow Lite model into an ONNX file that tract-onnx runs.

Run by scripts/models/install.sh inside its private virtualenv (tflite2onnx and
pinned onnx/numpy/tflite); not meant to be run by hand, but it can be:

    convert.py SRC.tflite DST.onnx [--rename OLD=NEW ...] [--batch N]

tflite2onnx turns the NHWC TFLite graph into an NCHW ONNX graph (opset 11,
IR 6): image inputs become float32 [N, 3, H, W]. After converting, this script

* renames graph inputs/outputs (--rename) so every model has stable, readable
  tensor names (the Rust engine looks them up by name or by position);
* rewrites bilinear Resize nodes (full-range BlazeFace has three) into
  Pad(edge) -> Resize(scales) -> Slice, which tract-onnx evaluates exactly
  (0.21 mishandles the converter's sizes-only form, 0.23 runs both; see
  rewrite_resize);
* optionally fixes the batch dimension (--batch), for MobileFaceNet whose TFLite
  graph was exported with a fixed batch of 2;
* converts four TFLite operators tflite2onnx 0.4.1 does not know (see
  register_extra_ops), used only by the anti-spoofing model: LEAKY_RELU,
  LESS, GREATER_EQUAL (as Not(Less), opset 11 has no GreaterOrEqual) and
  CAST; the other models contain none of them, so their output is unchanged;
* inserts Flatten before a Gemm whose input has more than two dimensions
  (TFLite's FULLY_CONNECTED flattens by itself; see flatten_gemm_inputs);
* sorts initializers, initializer inputs and value infos by name (tflite2onnx
  emits them in an address-dependent order, which made the bytes vary);
* checks the result with onnx.checker (full check, with shape inference) and
  writes it atomically.

The output is deterministic for a given input and pinned package set: the
install script runs it with PYTHONHASHSEED=0 and compares the SHA-256 of the
result with models.lock.
"""
import argparse
import logging
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper
import tflite2onnx


def rename_tensor(graph: onnx.GraphProto, old: str, new: str) -> None:
    names = set()
    for n in graph.node:
        names.update(n.input)
        names.update(n.output)
    names.update(i.name for i in graph.initializer)
    names.update(i.name for i in graph.input)
    if old not in names:
        sys.exit(f"convert.py: no tensor named {old!r} to rename")
    if old == new:
        return
    if new in names:
        sys.exit(f"convert.py: cannot rename {old!r} to {new!r}: name already used")
    for n in graph.node:
        for i, x in enumerate(n.input):
            if x == old:
                n.input[i] = new
        for i, x in enumerate(n.output):
            if x == old:
                n.output[i] = new
    for coll in (graph.input, graph.output, graph.value_info):
        for v in coll:
            if v.name == old:
                v.name = new


def set_batch(graph: onnx.GraphProto, batch: int) -> None:
    inits = {i.name: i for i in graph.initializer}
    image_inputs = [i for i in graph.input if i.name not in inits]
    old = image_inputs[0].type.tensor_type.shape.dim[0].dim_value
    if old == batch:
        return
    # Activations (graph inputs/outputs and intermediate value infos).
    for coll in (graph.input, graph.output, graph.value_info):
        for v in coll:
            if v.name in inits:
                continue
            dims = v.type.tensor_type.shape.dim
            if len(dims) and dims[0].HasField("dim_value") and dims[0].dim_value == old:
                dims[0].dim_value = batch
    # Reshape target shapes that spell the batch out as a constant.
    for n in graph.node:
        if n.op_type != "Reshape" or n.input[0] in inits or n.input[1] not in inits:
            continue
        init = inits[n.input[1]]
        shape = numpy_helper.to_array(init).copy()
        if shape.size and shape[0] == old:
            shape[0] = batch
            init.CopyFrom(numpy_helper.from_array(shape, init.name))


def rewrite_resize(graph: onnx.GraphProto) -> int:
    """Rewrite bilinear half-pixel Resize nodes into a form tract-onnx evaluates exactly.

    tflite2onnx emits RESIZE_BILINEAR(half_pixel_centers) as an opset-11 Resize with an
    empty `scales` and a constant `sizes` input. tract-onnx 0.21 then resizes nothing
    (it iterates the empty scales), and at the low border it extrapolates where
    TFLite and onnxruntime clamp (tract-onnx 0.23 handles the original form too). Each such node with integer factors becomes

        Pad(mode=edge, 1 on each spatial side) -> Resize(scales) -> Slice

    which is numerically identical to the original in TFLite/onnxruntime semantics
    (after edge padding no sample coordinate falls outside the input) and uses only
    what tract supports. Returns the number of nodes rewritten.
    """
    inits = {i.name: i for i in graph.initializer}
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(graph.value_info) + list(graph.input)}
    new_nodes, count = [], 0
    for n in graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
        if (n.op_type != "Resize" or len(n.input) != 4
                or attrs.get("mode") != b"linear"
                or attrs.get("coordinate_transformation_mode") != b"half_pixel"
                or n.input[3] not in inits or n.input[0] not in shapes):
            new_nodes.append(n)
            continue
        in_shape = shapes[n.input[0]]
        sizes = [int(v) for v in numpy_helper.to_array(inits[n.input[3]])]
        if (len(in_shape) != 4 or sizes[:2] != in_shape[:2]
                or any(o % i for o, i in zip(sizes[2:], in_shape[2:]))):
            sys.exit(f"convert.py: Resize {n.name!r} has no integer spatial factor")
        factors = [o // i for o, i in zip(sizes[2:], in_shape[2:])]
        base = n.name or n.output[0]
        pads_name, padded = base + "/tract_edge_pad_amounts", base + "/tract_edge_padded"
        scales_name, resized = base + "/tract_scales", base + "/tract_resized"
        starts, ends, axes = base + "/tract_slice_starts", base + "/tract_slice_ends", base + "/tract_slice_axes"
        for name, value in (
            (pads_name, np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64)),
            (scales_name, np.array([1.0, 1.0] + [float(f) for f in factors], np.float32)),
            (starts, np.array(factors, np.int64)),
            (ends, np.array([f + o for f, o in zip(factors, sizes[2:])], np.int64)),
            (axes, np.array([2, 3], np.int64)),
        ):
            graph.initializer.append(numpy_helper.from_array(value, name))
        new_nodes.append(onnx.helper.make_node(
            "Pad", [n.input[0], pads_name], [padded], name=base + "/tract_edge_pad", mode="edge"))
        new_nodes.append(onnx.helper.make_node(
            "Resize", [padded, n.input[1], scales_name], [resized], name=base,
            mode="linear", coordinate_transformation_mode="half_pixel"))
        new_nodes.append(onnx.helper.make_node(
            "Slice", [resized, starts, ends, axes], list(n.output), name=base + "/tract_crop"))
        count += 1
    graph.ClearField("node")
    graph.node.extend(new_nodes)
    # Drop initializers nobody reads any more (the old `sizes`).
    used = {x for n in graph.node for x in n.input}
    keep = [i for i in graph.initializer if i.name in used]
    graph.ClearField("initializer")
    graph.initializer.extend(keep)
    return count


def register_extra_ops() -> None:
    """Teach tflite2onnx the operators of the anti-spoofing model it lacks.

    All four are element-wise, so tensor layouts propagate through them like
    through Add. They are registered before converting any model; a graph
    without these operators converts exactly as before.
    """
    import tflite
    from onnx import TensorProto
    from tflite2onnx.op import OpFactory, Operator
    from tflite2onnx.op.binary import Binary

    ops = tflite.BuiltinOperator
    if ops.LEAKY_RELU in OpFactory.registry:
        return

    # The tflite package returns 0, not an empty array, for the shape of a scalar
    # tensor (the routing thresholds of the anti-spoofing model); tflite2onnx then fails
    # iterating it. Models without scalar tensors never reach this.
    shape_as_numpy = tflite.Tensor.ShapeAsNumpy

    def scalar_aware_shape(self):
        if self.ShapeLength() == 0:
            return np.zeros(0, np.int32)
        return shape_as_numpy(self)

    tflite.Tensor.ShapeAsNumpy = scalar_aware_shape

    class Elementwise(Operator):
        def __init__(self, TFactory, index):
            super().__init__(TFactory, index)
            self.setInited()

        def propagatableTensors(self):
            return self.inputs + self.outputs

        def transform(self):
            pass

    class LeakyRelu(Elementwise):
        TypeMapping = {ops.LEAKY_RELU: "LeakyRelu"}

        @property
        def type(self):
            return "LeakyRelu"

        def parse(self):
            op = self.tflite
            assert op.InputsLength() == 1 and op.OutputsLength() == 1
            self.parseInput(0)
            self.parseOutput(0)
            opt = tflite.LeakyReluOptions()
            raw = op.BuiltinOptions()
            opt.Init(raw.Bytes, raw.Pos)
            self.attrs["alpha"] = float(opt.Alpha())
            self.setParsed()

    class Cast(Elementwise):
        TypeMapping = {ops.CAST: "Cast"}

        @property
        def type(self):
            return "Cast"

        def parse(self):
            op = self.tflite
            assert op.InputsLength() == 1 and op.OutputsLength() == 1
            self.parseInput(0)
            out = self.parseOutput(0)
            self.attrs["to"] = int(out.dtype)
            self.setParsed()

    class Comparison(Binary):
        def fakeBroadcast(self):
            # A scalar operand (the routing thresholds) broadcasts against any shape and
            # layout in ONNX itself; tflite2onnx's explicit reshape would need a layout the
            # 2-D operand does not have.
            if any(len(t.shape) == 0 for t in self.inputs):
                return
            super().fakeBroadcast()

    class Less(Comparison):
        TypeMapping = {ops.LESS: "Less"}

    class Not(Elementwise):
        TypeMapping = {}

        @property
        def type(self):
            return "Not"

    class GreaterEqual(Comparison):
        """a >= b as Not(a < b): the Less node writes a helper tensor, Not the output."""

        TypeMapping = {ops.GREATER_EQUAL: "Less"}

        def parse(self):
            super().parse()
            out = self.outputs[0]
            assert out.dtype == TensorProto.BOOL
            less = self.TFactory.getWithRef(out, "TFLITE2ONNX_Less_" + out.name, True)
            less.setParsed()
            self.replaceOutput(out, less)
            less.addProducer(self)
            neg = Not(self.TFactory, -1)
            neg.name = "TFLITE2ONNX_Not_" + out.name
            less.addConsumer(neg)
            neg.inputs.append(less)
            out.replaceProducer(self, neg)
            neg.outputs.append(out)
            neg.setParsed()
            self.post.append(neg)

    for converter in (LeakyRelu, Cast, Less, GreaterEqual):
        OpFactory.register(converter)


def flatten_gemm_inputs(graph: onnx.GraphProto) -> int:
    """Insert Flatten before each Gemm whose input has more than two dimensions.

    TFLite's FULLY_CONNECTED takes any rank and flattens it; tflite2onnx maps it to Gemm,
    which wants rank 2. Only inputs whose dimensions after the batch are all 1 but one are
    rewritten (there NCHW and NHWC flatten to the same order: the anti-spoofing model's
    [1, 128, 1, 1] features); anything else stops the conversion. Returns the count.
    """
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
              for v in list(graph.value_info) + list(graph.input)}
    new_nodes, count = [], 0
    for n in graph.node:
        shape = shapes.get(n.input[0]) if n.op_type == "Gemm" else None
        if shape is None or len(shape) <= 2:
            new_nodes.append(n)
            continue
        if sum(1 for d in shape[1:] if d != 1) > 1:
            sys.exit(f"convert.py: Gemm {n.name!r} input {shape} cannot be flattened layout-free")
        flat = n.input[0] + "/tract_flat_" + (n.name or n.output[0])
        new_nodes.append(onnx.helper.make_node(
            "Flatten", [n.input[0]], [flat], name=flat, axis=1))
        n.input[0] = flat
        new_nodes.append(n)
        count += 1
    graph.ClearField("node")
    graph.node.extend(new_nodes)
    return count


def canonicalize(graph: onnx.GraphProto) -> None:
    """Sort the graph's unordered collections by name.

    tflite2onnx emits initializers (and the graph inputs and value infos that
    mirror them) in an order that depends on object addresses, so the same model
    converted twice can serialize differently. Node order is topological and kept.
    """
    inits = sorted(graph.initializer, key=lambda t: t.name)
    init_names = {t.name for t in inits}
    inputs = [v for v in graph.input if v.name not in init_names] + sorted(
        (v for v in graph.input if v.name in init_names), key=lambda v: v.name)
    infos = sorted(graph.value_info, key=lambda v: v.name)
    for field, items in (("initializer", inits), ("input", inputs), ("value_info", infos)):
        copies = [type(x)() for x in items]
        for c, x in zip(copies, items):
            c.CopyFrom(x)
        graph.ClearField(field)
        getattr(graph, field).extend(copies)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("src")
    ap.add_argument("dst")
    ap.add_argument("--rename", action="append", default=[], metavar="OLD=NEW")
    ap.add_argument("--batch", type=int)
    args = ap.parse_args()

    # tflite2onnx warns about float16 weights (MediaPipe stores them that way and
    # dequantizes them up front); the converted graph is all float32.
    logging.getLogger("tflite2onnx").setLevel(logging.ERROR)

    dst_dir = os.path.dirname(os.path.abspath(args.dst))
    with tempfile.TemporaryDirectory(dir=dst_dir, prefix=".convert-") as tmp:
        raw = os.path.join(tmp, "raw.onnx")
        register_extra_ops()
        tflite2onnx.convert(args.src, raw)
        model = onnx.load(raw)
        for spec in args.rename:
            old, sep, new = spec.partition("=")
            if not sep or not old or not new:
                sys.exit(f"convert.py: bad --rename {spec!r}, want OLD=NEW")
            rename_tensor(model.graph, old, new)
        if args.batch is not None:
            set_batch(model.graph, args.batch)
        rewrite_resize(model.graph)
        flatten_gemm_inputs(model.graph)
        canonicalize(model.graph)
        onnx.checker.check_model(model, full_check=True)
        out = os.path.join(tmp, "out.onnx")
        onnx.save(model, out)
        os.replace(out, args.dst)


if __name__ == "__main__":
    main()
