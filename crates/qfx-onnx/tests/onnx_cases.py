"""ONNX models for the import tests, and ONNX Runtime's outputs on them.

    python onnx_cases.py OUT_DIR [FIXTURE.onnx ...]

Builds one small model per supported operator (and per layout an exporter writes), three whole
networks (an MLP, a CNN with residual adds, a depthwise-separable CNN) and the models that must
be refused, with the `onnx` package; runs ONNX Runtime on a random batch for every model that
must import, the committed fixtures included. For each case it writes `NAME.onnx` (fixtures are
read where they are), `NAME.input.bin` and `NAME.output.bin` (float32, little-endian,
row-major) and lists everything in `cases.json`: name, model path, input shape, output shape,
and for refused models the texts the error must contain.
"""

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
rng = np.random.default_rng(7)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def ints(name, values):
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def rand(*shape, scale=0.5):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


class Net:
    """A graph under construction: nodes, initializers, fresh value names."""

    def __init__(self, input_shape, batch="N"):
        self.nodes, self.inits, self.k = [], [], 0
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch] + list(input_shape))
        self.shape = list(input_shape)

    def fresh(self, base):
        self.k += 1
        return f"{base}_{self.k}"

    def const(self, array, base="w"):
        name = self.fresh(base)
        self.inits.append(init(name, array))
        return name

    def iconst(self, values, base="s"):
        name = self.fresh(base)
        self.inits.append(ints(name, values))
        return name

    def op(self, op_type, inputs, n_out=1, **attrs):
        outs = [self.fresh(op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=self.fresh("/" + op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def conv(self, x, c_in, c_out, k, group=1, bias=True, **attrs):
        ks = k if isinstance(k, (list, tuple)) else [k, k]
        w = self.const(rand(c_out, c_in // group, *ks, scale=1.0 / np.sqrt(c_in // group * np.prod(ks))))
        ins = [x, w] + ([self.const(rand(c_out, scale=0.1), "b")] if bias else [])
        return self.op("Conv", ins, group=group, **attrs)

    def bn(self, x, c, eps=1e-5):
        ins = [x, self.const(1 + rand(c, scale=0.2)), self.const(rand(c, scale=0.2)),
               self.const(rand(c, scale=0.3)), self.const(0.5 + rng.random(c).astype(np.float32))]
        return self.op("BatchNormalization", ins, epsilon=eps)

    def gemm(self, x, d_in, d_out, trans_b=1, **attrs):
        shape = (d_out, d_in) if trans_b else (d_in, d_out)
        w = self.const(rand(*shape, scale=1.0 / np.sqrt(d_in)))
        return self.op("Gemm", [x, w, self.const(rand(d_out, scale=0.1), "b")], transB=trans_b, **attrs)

    def model(self, out, opset=OPSET):
        y = helper.make_empty_tensor_value_info(out)
        g = helper.make_graph(self.nodes, "case", [self.input], [y], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="qfx-tests")
        m.ir_version = 8
        # The output's type and shape as shape inference finds them.
        inferred = onnx.shape_inference.infer_shapes(m).graph.value_info
        found = [v for v in inferred if v.name == out]
        if found:
            m.graph.output[0].CopyFrom(found[0])
        return m


def single(input_shape, build):
    n = Net(input_shape)
    return n.model(build(n, "x"))


def cases():
    """(name, model) of every model that must import and match ONNX Runtime."""
    c = {}
    img = [3, 8, 8]
    c["conv2d_pads_bias"] = single(img, lambda n, x: n.conv(x, 3, 4, 3, pads=[1, 1, 1, 1]))
    c["conv2d_stride_dilation_asymmetric"] = single(
        img, lambda n, x: n.conv(x, 3, 5, [3, 2], bias=False, strides=[2, 1], dilations=[2, 1], pads=[1, 0, 2, 1]))
    c["conv2d_groups"] = single([4, 7, 7], lambda n, x: n.conv(x, 4, 6, 3, group=2, pads=[1, 1, 1, 1]))
    c["conv2d_depthwise"] = single([4, 7, 7], lambda n, x: n.conv(x, 4, 4, 3, group=4, strides=[2, 2]))
    c["conv2d_same_upper"] = single(img, lambda n, x: n.conv(x, 3, 4, 4, auto_pad="SAME_UPPER", strides=[2, 2]))
    c["conv2d_same_lower"] = single(img, lambda n, x: n.conv(x, 3, 4, 2, auto_pad="SAME_LOWER"))
    c["conv1d"] = single([4, 16], lambda n, x: n.conv(x, 4, 6, [3], group=2, strides=[2], pads=[2, 1], dilations=[2]))
    c["gemm_transB_alpha_beta"] = single([12], lambda n, x: n.gemm(x, 12, 5, alpha=0.5, beta=2.0))
    c["gemm_no_transB_bias_row"] = single([12], lambda n, x: n.op(
        "Gemm", [x, n.const(rand(12, 5)), n.const(rand(1, 5), "b")]))
    c["matmul_add"] = single([12], lambda n, x: n.op("Add", [n.op("MatMul", [x, n.const(rand(12, 7))]),
                                                              n.const(rand(7), "b")]))
    c["batchnorm_eps_1e-3"] = single(img, lambda n, x: n.bn(x, 3, eps=1e-3))
    c["batchnorm_vector"] = single([12], lambda n, x: n.bn(n.gemm(x, 12, 6), 6))
    c["relu"] = single(img, lambda n, x: n.op("Relu", [x]))
    c["leaky_relu"] = single(img, lambda n, x: n.op("LeakyRelu", [x], alpha=0.1))
    c["clip_relu6"] = single(img, lambda n, x: n.op("Clip", [x, n.const(np.float32(0), "lo"), n.const(np.float32(0.6), "hi")]))
    c["clip_min_only"] = single(img, lambda n, x: n.op("Clip", [x, n.const(np.float32(0), "lo")]))
    c["clip_hard_tanh"] = single(img, lambda n, x: n.op("Clip", [x, n.const(np.float32(-1), "lo"), n.const(np.float32(0.5), "hi")]))
    c["sigmoid"] = single(img, lambda n, x: n.op("Sigmoid", [x]))
    c["tanh"] = single(img, lambda n, x: n.op("Tanh", [x]))
    c["hard_sigmoid"] = single(img, lambda n, x: n.op("HardSigmoid", [x], alpha=1.0 / 6, beta=0.5))
    c["add_residual"] = single(img, lambda n, x: n.op("Add", [n.conv(x, 3, 3, 3, pads=[1, 1, 1, 1]), x]))
    c["mul_two_activations"] = single(img, lambda n, x: n.op("Mul", [n.op("Sigmoid", [x]), x]))
    c["add_constant_per_channel"] = single(img, lambda n, x: n.op("Add", [n.op("Relu", [x]), n.const(rand(1, 3, 1, 1))]))
    c["mul_constant_scalar"] = single(img, lambda n, x: n.op("Mul", [n.const(np.float32(0.75)), x]))
    c["conv_then_add_bias"] = single(img, lambda n, x: n.op("Add", [n.conv(x, 3, 4, 3, bias=False), n.const(rand(4, 1, 1))]))
    c["concat_channels"] = single(img, lambda n, x: n.op("Concat", [n.conv(x, 3, 2, 1), n.conv(x, 3, 3, 3, pads=[1] * 4)], axis=1))
    c["concat_negative_axis"] = single([6], lambda n, x: n.op("Concat", [n.op("Relu", [x]), x], axis=-1))
    c["maxpool2d"] = single(img, lambda n, x: n.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2]))
    c["maxpool2d_overlapping"] = single([3, 9, 9], lambda n, x: n.op("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2]))
    c["maxpool1d"] = single([4, 16], lambda n, x: n.op("MaxPool", [x], kernel_shape=[3], strides=[2]))
    c["avgpool2d"] = single(img, lambda n, x: n.op("AveragePool", [x], kernel_shape=[2, 3], strides=[1, 2]))
    c["avgpool1d"] = single([4, 16], lambda n, x: n.op("AveragePool", [x], kernel_shape=[4], strides=[4]))
    c["global_avgpool_flatten_gemm"] = single(img, lambda n, x: n.gemm(n.op("Flatten", [n.op("GlobalAveragePool", [x])]), 3, 4))
    c["global_maxpool"] = single(img, lambda n, x: n.op("GlobalMaxPool", [x]))
    c["global_avgpool_1d"] = single([4, 10], lambda n, x: n.op("GlobalAveragePool", [x]))
    c["flatten"] = single(img, lambda n, x: n.op("Flatten", [n.op("Relu", [x])]))
    c["reshape_shape_chain"] = single(img, lambda n, x: reshape_chain(n, n.op("Relu", [x])))
    c["reshape_minus_one"] = single(img, lambda n, x: n.gemm(n.op("Reshape", [x, n.iconst([-1, 192])]), 192, 3))
    c["reshape_to_signal"] = single(img, lambda n, x: n.conv(n.op("Reshape", [x, n.iconst([0, 3, -1])]), 3, 2, [3]))
    c["cast"] = single(img, lambda n, x: n.gemm(cast_chain(n, x), 192, 3))
    c["identity_dropout"] = single(img, lambda n, x: n.op("Dropout", [n.op("Identity", [n.op("Relu", [x])])]))
    c["constant_node_weight"] = single([12], lambda n, x: n.op("MatMul", [x, constant_node(n, rand(12, 4))]))
    return c


def constant_node(n, array):
    out = n.fresh("const")
    n.nodes.append(helper.make_node("Constant", [], [out], name=n.fresh("/Constant"), value=init(out, array)))
    return out


def cast_chain(n, x):
    """A cast of the activation to float (kept as is) and a reshape whose target shape is cast
    from float to integers (folded), as `tf2onnx` writes them."""
    h = n.op("Cast", [n.op("Relu", [x])], to=TensorProto.FLOAT)
    shape = n.op("Cast", [n.const(np.array([-1, 192]), "shape")], to=TensorProto.INT64)
    return n.op("Reshape", [h, shape])


def reshape_chain(n, x):
    """`x.view(x.size(0), -1)` as the TorchScript exporter writes it."""
    shape = n.op("Shape", [x])
    batch = n.op("Gather", [shape, n.iconst(0, "i")], axis=0)
    b = n.op("Unsqueeze", [batch, n.iconst([0], "axes")])
    minus = n.op("Unsqueeze", [n.iconst(-1, "m"), n.iconst([0], "axes")])
    return n.op("Reshape", [x, n.op("Concat", [b, minus], axis=0)])


def networks():
    """Three whole networks on 1×28×28 images."""
    c = {}
    n = Net([1, 28, 28])
    h = n.op("Flatten", ["x"])
    h = n.op("Relu", [n.gemm(h, 784, 64)])
    h = n.op("Dropout", [h])
    h = n.op("Relu", [n.bn(n.gemm(h, 64, 32), 32)])
    c["net_mlp"] = n.model(n.gemm(h, 32, 10))

    n = Net([1, 28, 28])
    h = n.op("Relu", [n.bn(n.conv("x", 1, 8, 3, bias=False, pads=[1] * 4), 8)])
    for c_in, c_out, stride in [(8, 8, 1), (8, 16, 2)]:
        y = n.op("Relu", [n.bn(n.conv(h, c_in, c_out, 3, bias=False, strides=[stride] * 2, pads=[1] * 4), c_out)])
        y = n.bn(n.conv(y, c_out, c_out, 3, bias=False, pads=[1] * 4), c_out)
        short = h if stride == 1 else n.bn(n.conv(h, c_in, c_out, 1, bias=False, strides=[2, 2]), c_out)
        h = n.op("Relu", [n.op("Add", [y, short])])
    h = n.op("Flatten", [n.op("GlobalAveragePool", [h])])
    c["net_residual_cnn"] = n.model(n.gemm(h, 16, 10))

    n = Net([1, 28, 28])
    lo, hi = n.const(np.float32(0), "lo"), n.const(np.float32(6), "hi")
    h = n.op("Clip", [n.bn(n.conv("x", 1, 8, 3, bias=False, strides=[2, 2], pads=[1] * 4), 8), lo, hi])
    for c_in, c_out in [(8, 16), (16, 24)]:
        h = n.op("Clip", [n.bn(n.conv(h, c_in, c_in, 3, group=c_in, bias=False, pads=[1] * 4), c_in), lo, hi])
        h = n.op("Relu", [n.bn(n.conv(h, c_in, c_out, 1, bias=False), c_out)])
    h = n.op("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2])
    h = reshape_chain(n, n.op("GlobalAveragePool", [h]))
    c["net_depthwise_separable"] = n.model(n.gemm(h, 24, 10))
    return c


def refused():
    """(name, model, texts the error must contain)."""
    r = []
    n = Net([3, 8, 8])
    t = n.op("Transpose", [n.op("Relu", ["x"])], perm=[0, 1, 3, 2])
    transpose = n.nodes[-1].name
    m = n.model(n.op("Softmax", [n.op("Flatten", [t])]))
    r.append(("unsupported_ops", m, ["Transpose", "Softmax", f"node `{transpose}`", "qfx imports Conv"]))
    # A Conv whose weight is computed from the input.
    n = Net([1, 3, 3])
    m = n.model(n.op("Conv", ["x", "x"]))
    r.append(("conv_weight_not_constant", m, ["(Conv)", "weight `x` is not a constant"]))
    n = Net([3, 8, 8])
    n.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    r.append(("dynamic_height", n.model(n.op("Relu", ["x"])), ["dimension 2 is `H` (dynamic)"]))
    n = Net([3, 8, 8])
    r.append(("maxpool_pads", n.model(n.op("MaxPool", ["x"], kernel_shape=[3, 3], pads=[1, 1, 1, 1])),
              ["/MaxPool", "pools without padding"]))
    n = Net([3, 8, 8])
    m = n.model(n.op("Add", ["x", n.op("GlobalAveragePool", ["x"])]))
    r.append(("broadcast_add", m, ["/Add", "no broadcasting"]))
    n = Net([3, 8, 8])
    r.append(("opset_11", n.model(n.op("Relu", ["x"]), opset=11), ["opset 11"]))
    n = Net([3, 8, 8])
    r.append(("clip_upper_only", n.model(n.op("Clip", ["x", "", n.const(np.float32(1), "hi")])),
              ["/Clip", "clips to [−∞, 1]"]))
    return r


def write(path, array):
    np.ascontiguousarray(array, dtype="<f4").tofile(path)


def run_case(out_dir, name, path, manifest):
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    shape = [3 if not isinstance(d, int) else d for d in inp.shape]
    x = (rng.standard_normal(shape) * 1.5).astype(np.float32)
    y = sess.run(None, {inp.name: x})[0]
    write(os.path.join(out_dir, f"{name}.input.bin"), x)
    write(os.path.join(out_dir, f"{name}.output.bin"), y)
    manifest.append({"name": name, "model": path, "input": list(x.shape), "output": list(y.shape)})


def main():
    out_dir = sys.argv[1]
    os.makedirs(out_dir, exist_ok=True)
    manifest = []
    for name, m in {**cases(), **networks()}.items():
        onnx.checker.check_model(m)
        path = os.path.join(out_dir, f"{name}.onnx")
        onnx.save(m, path)
        run_case(out_dir, name, path, manifest)
    # The residual network again, its weights stored as external data beside the file.
    m = networks()["net_residual_cnn"]
    path = os.path.join(out_dir, "external_data.onnx")
    onnx.save(m, path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="external_data.weights", size_threshold=0)
    run_case(out_dir, "external_data", path, manifest)
    for fixture in sys.argv[2:]:
        name = "fixture_" + os.path.splitext(os.path.basename(fixture))[0]
        run_case(out_dir, name, os.path.abspath(fixture), manifest)
    for name, m, texts in refused():
        path = os.path.join(out_dir, f"{name}.onnx")
        onnx.save(m, path)
        manifest.append({"name": name, "model": path, "refused": texts})
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump(manifest, f, indent=1)


if __name__ == "__main__":
    main()
