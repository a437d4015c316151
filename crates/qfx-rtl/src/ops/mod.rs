//! One function per operation (`ARCHITECTURE.md` §7): each takes the layer's input elements as
//! wires (codes of the operands' formats) and builds the logic of its output elements (codes of
//! the layer's format) in the layer module's [`Body`]. Sums of products live in [`mac`],
//! element-wise operations in [`elementwise`], the operations that move or pool values in
//! [`pool`].

pub(crate) mod constmul;
pub(crate) mod elementwise;
pub(crate) mod mac;
pub(crate) mod pool;

use qfx_fixed::{Fixed, Format};
use qfx_ir::{sign_value, Graph, Node, Op};

use crate::design::{RtlOptions, SumInfo};
use crate::verilog::{Body, Sig};
use crate::{ErrorKind, RtlError};

/// What an operation needs besides its inputs.
pub(crate) struct Ctx<'a> {
    pub options: &'a RtlOptions,
    /// Whether the static range analysis (`qfx_engine::analyze`) says some partial sum of
    /// this layer's accumulators can overflow.
    pub acc_can_overflow: bool,
    /// The elements are one beat of a streamed image (element `i` is channel `i`), not the
    /// whole tensor.
    pub beat: bool,
    /// For a sum of products reading a `Sign` layer: the code `c` of its `+1` (its `−1` is
    /// `−c`), which makes the XNOR-popcount form possible ([`binary_input`]).
    pub binary_input: Option<i128>,
}

/// The code of `+1` when `node` is a sum of products reading a `Sign` layer whose format holds
/// `±1` as codes `±c` (so the sign bit alone says which), else `None`.
pub(crate) fn binary_input(graph: &Graph, node: &Node) -> Option<i128> {
    node.mac()?;
    let producer = &graph.nodes()[node.x().source?];
    if !matches!(producer.op(), Op::Sign) {
        return None;
    }
    let f = producer.format();
    let plus = cast_const(&sign_value(true), f);
    let minus = cast_const(&sign_value(false), f);
    (f.is_signed() && plus > 0 && minus == -plus).then_some(plus)
}

/// The output elements of `node` from its operands' elements `xs` (one list per operand).
pub(crate) fn emit(
    b: &mut Body,
    node: &Node,
    xs: &[Vec<Sig>],
    ctx: &Ctx,
    sum: &mut Option<SumInfo>,
) -> Result<Vec<Sig>, RtlError> {
    let to = node.format();
    let xf = |k: usize| node.operand_format(k);
    let x = &xs[0];
    let inner: usize = if ctx.beat {
        1
    } else {
        node.x().shape[1..].iter().product()
    };
    let logic = ctx.options.cast_logic;
    Ok(match node.op() {
        Op::Quantize => elementwise::quantize(b, x, xf(0), to, logic),
        Op::Relu { clip } => elementwise::relu(b, x, xf(0), to, *clip, logic),
        Op::Sign => elementwise::sign(b, x, xf(0), to),
        Op::Prelu { slope } => elementwise::prelu(b, x, xf(0), to, slope, inner, ctx)?,
        Op::BatchNorm { scale, shift } => {
            elementwise::batch_norm(b, x, xf(0), to, scale, shift, inner, ctx)?
        }
        Op::Add => elementwise::add(b, x, xf(0), &xs[1], xf(1), to, logic)?,
        Op::Flatten | Op::Reshape { .. } => x.clone(),
        Op::MaxPool2d { .. } | Op::MaxPool1d { .. } | Op::GlobalMaxPool => {
            pool::max_pool(b, x, &node.window().expect("a pooling layer has a window"))
        }
        Op::AvgPool2d { reciprocal, .. } | Op::AvgPool1d { reciprocal, .. } => {
            let window = node.window().expect("a pooling layer has a window");
            pool::avg_pool(b, pool::windows(x, &window), xf(0), to, reciprocal, ctx)?
        }
        Op::Shortcut {
            stride,
            pad_channels,
        } => pool::shortcut(b, x, xf(0), &node.x().shape, *stride, *pad_channels),
        Op::GlobalAvgPool { reciprocal } => {
            let windows = x.chunks(inner.max(1)).map(<[Sig]>::to_vec).collect();
            pool::avg_pool(b, windows, xf(0), to, reciprocal, ctx)?
        }
        Op::Dense { .. } | Op::Conv2d { .. } | Op::Conv1d { .. } => {
            let mac = node
                .mac()
                .expect("dense and convolutions are sums of products");
            let (outs, info) = mac::sum_of_products(b, &mac, x, xf(0), to, ctx)?;
            *sum = Some(info);
            outs
        }
        Op::HardTanh { .. }
        | Op::HardSigmoid { .. }
        | Op::Lookup { .. }
        | Op::Multiply
        | Op::Concat => return Err(not_built(node.op())),
    })
}

/// Why the Verilog back end refuses `op`, if it does: the operations it does not build yet (the
/// HLS back end builds every operation of the IR).
pub(crate) fn unsupported(op: &Op) -> Option<RtlError> {
    matches!(
        op,
        Op::HardTanh { .. }
            | Op::HardSigmoid { .. }
            | Op::Lookup { .. }
            | Op::Multiply
            | Op::Concat
    )
    .then(|| not_built(op))
}

fn not_built(op: &Op) -> RtlError {
    RtlError::new(
        ErrorKind::Unsupported,
        format!(
            "the Verilog back end does not build {} layers yet (`qfx export hls` does)",
            op.kind()
        ),
    )
}

/// The HLS result type of `a · b` (`Fixed::mul`).
pub(crate) fn mul_format(a: Format, b: Format) -> Result<Format, RtlError> {
    Fixed::zero(a)
        .mul(&Fixed::zero(b))
        .map(|p| p.format())
        .map_err(|e| too_wide(&format!("{a} · {b}"), e))
}

/// The HLS result type of `a + b` (`Fixed::add`).
pub(crate) fn add_format(a: Format, b: Format) -> Result<Format, RtlError> {
    Fixed::zero(a)
        .add(&Fixed::zero(b))
        .map(|p| p.format())
        .map_err(|e| too_wide(&format!("{a} + {b}"), e))
}

fn too_wide(what: &str, e: qfx_fixed::Error) -> RtlError {
    RtlError::new(ErrorKind::Unsupported, format!("{what}: {e}"))
}

/// The code `value` takes when assigned to `to` (a constant assignment, done here).
pub(crate) fn cast_const(value: &Fixed, to: Format) -> i128 {
    value.cast(to).code().unwrap_or(0)
}
