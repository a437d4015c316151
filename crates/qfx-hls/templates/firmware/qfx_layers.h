// qfx layer library: the numerics of every qfx-ir operation, written once by hand.
// Copied verbatim by qfx's HLS exporter; the generated files only instantiate these templates
// with the model's types and constants.
//
// Semantics (identical to the qfx integer engine, bit for bit):
//   - constants are integer codes; `from_code` loads one as raw bits (never a decimal float);
//   - dense / conv2d: acc = cast(bias); acc = cast(acc + w * x) after every product, bias first,
//     then the input channels of the output's group, kernel rows, kernel columns (padded taps
//     are skipped: they add nothing); the product and the sum are exact (ap_fixed full
//     precision), the assignment to acc_t rounds and overflows as acc_t says; the result is then
//     assigned to the output type. A 1-D convolution is a 2-D one of height 1;
//   - batchnorm: y = scale[c] * x + shift[c] at full precision, assigned to the output type;
//   - prelu: y = x where x >= 0, else slope[c] * x at full precision; sign: y = x >= 0 ? 1 : -1;
//   - add, multiply: y = a + b, a * b at full precision; concat: each value assigned;
//   - hard_tanh: y = x < lo ? lo : x > hi ? hi : x (bounds in clip_t); hard_sigmoid: t = alpha * x
//     + beta exactly, y = t < 0 ? 0 : t > 1 ? 1 : t; lookup: y = table[clamp((code(x) >> shift)
//     - offset, 0, n - 1)], the table's codes loaded as they are;
//   - pooling: windows without padding; max pooling moves values, average pooling multiplies the
//     exact window sum by the reciprocal; global pooling is one window over the whole map;
//   - per-channel formats: a layer's channels are processed in groups that share their weight /
//     bias / accumulator types (`ch` lists a group's channels; `all_channels` means "all, in
//     order").
//
// Every layer template takes one configuration struct, written per layer (and per channel group)
// in model.cpp, in the manner of hls4ml's configs: its typedefs name the tensor, constant and
// accumulator types (x_t input, y_t output, w_t/b_t/acc_t weights, bias, accumulator, wc_t/bc_t
// the integer containers of the constants' codes) and its constants the sizes, so a call reads
// `qfx::conv2d<l3_conv_cfg0>(x, w, b, ch, y)` and the struct says what each number is.
#ifndef QFX_LAYERS_H_
#define QFX_LAYERS_H_

#include <ap_fixed.h>
#include <ap_int.h>

namespace qfx {

// The type a ReLU clip is read into (as the integer engine does).
typedef ap_fixed<64, 32, AP_TRN, AP_SAT> clip_t;

// Placeholder channel list for layers whose channels all share one set of types.
static const int all_channels[1] = {0};

// The fixed-point value whose raw W-bit pattern is the two's complement of `code`.
template <class T, class C>
inline T from_code(const C code) {
#pragma HLS INLINE
  ap_int<T::width> bits = code;  // lossless: the code fits in W bits by construction
  T v;
  v.range() = bits;
  return v;
}

// y = x assigned to the output type (quantize, flatten, copies).
template <class CFG>
void cast(const typename CFG::x_t x[CFG::n], typename CFG::y_t y[CFG::n]) {
Cast:
  for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
    y[i] = x[i];
  }
}

template <class CFG>
void add(const typename CFG::a_t a[CFG::n], const typename CFG::b_t b[CFG::n],
         typename CFG::y_t y[CFG::n]) {
Add:
  for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
    y[i] = a[i] + b[i];
  }
}

template <class CFG>
void multiply(const typename CFG::a_t a[CFG::n], const typename CFG::b_t b[CFG::n],
              typename CFG::y_t y[CFG::n]) {
Multiply:
  for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
    y[i] = a[i] * b[i];
  }
}

// One operand of a concatenation along the channel axis: its n values go to y[offset ..], each
// assigned to the output type (channels are the outermost axis, so each operand is one block).
template <class CFG>
void concat_part(const typename CFG::x_t x[CFG::n], typename CFG::y_t y[CFG::out_n]) {
Concat:
  for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
    y[CFG::offset + i] = x[i];
  }
}

// Clamp to [lo, hi] (their codes in clip_t are CFG::lo_code, CFG::hi_code), then assignment.
template <class CFG>
void hard_tanh(const typename CFG::x_t x[CFG::n], typename CFG::y_t y[CFG::n]) {
  const clip_t lo = from_code<clip_t>(CFG::lo_code);
  const clip_t hi = from_code<clip_t>(CFG::hi_code);
HardTanh:
  for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
    const typename CFG::x_t v = x[i];
    if (v < lo) {
      y[i] = lo;
    } else if (v > hi) {
      y[i] = hi;
    } else {
      y[i] = v;
    }
  }
}

// t = alpha * x + beta exactly (t_t holds it), clamped to [0, 1], assigned to the output type.
template <class CFG>
void hard_sigmoid(const typename CFG::x_t x[CFG::n], const typename CFG::ac_t alpha,
                  const typename CFG::bc_t beta, typename CFG::y_t y[CFG::n]) {
  const typename CFG::a_t a = from_code<typename CFG::a_t>(alpha);
  const typename CFG::b_t b = from_code<typename CFG::b_t>(beta);
  const clip_t one = 1;
HardSigmoid:
  for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
    const typename CFG::t_t t = a * x[i] + b;
    if (t < 0) {
      y[i] = 0;
    } else if (t > one) {
      y[i] = one;
    } else {
      y[i] = t;
    }
  }
}

// A function by table: the input's integer code c selects entry
// clamp(((c >> shift_right) << shift_left) - offset, 0, entries - 1), computed in an ap_int of
// index_width bits (wide enough that nothing overflows); the entry's code is the output's.
template <class CFG>
void lookup(const typename CFG::x_t x[CFG::n], const typename CFG::tc_t table[CFG::entries],
            typename CFG::y_t y[CFG::n]) {
  typedef typename CFG::x_t x_t;
  typedef ap_int<CFG::index_width> index_t;
Lookup:
  for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
    index_t k;
    if (CFG::x_signed) {
      const ap_int<x_t::width> c = x[i].range();
      k = c;
    } else {
      const ap_uint<x_t::width> c = x[i].range();
      k = c;
    }
    k = k >> CFG::shift_right;
    k = k << CFG::shift_left;
    k = k - index_t(CFG::offset);
    int entry = 0;
    if (k > index_t(CFG::entries - 1)) {
      entry = CFG::entries - 1;
    } else if (k > 0) {
      entry = k.to_int();
    }
    y[i] = from_code<typename CFG::y_t>(table[entry]);
  }
}

// max(x, 0), then min(., clip) when CFG::has_clip (the clip's code in clip_t is CFG::clip_code).
template <class CFG>
void relu(const typename CFG::x_t x[CFG::n], typename CFG::y_t y[CFG::n]) {
  const clip_t clip = from_code<clip_t>(CFG::clip_code);
Relu:
  for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
    typename CFG::x_t v = x[i];
    if (v < 0) v = 0;
    if (CFG::has_clip && v > clip) {
      y[i] = clip;
    } else {
      y[i] = v;
    }
  }
}

template <class CFG>
void dense(const typename CFG::x_t x[CFG::n_in], const typename CFG::wc_t w[CFG::n_in * CFG::n_out],
           const typename CFG::bc_t b[CFG::n_out], const int ch[],
           typename CFG::y_t y[CFG::n_out]) {
DenseOut:
  for (int k = 0; k < CFG::n_channels; k++) {
    const int o = CFG::all_channels ? k : ch[k];
    typename CFG::acc_t acc = from_code<typename CFG::b_t>(b[o]);
  DenseIn:
    for (int i = 0; i < CFG::n_in; i++) {
#pragma HLS PIPELINE II = 1
      acc = acc + from_code<typename CFG::w_t>(w[i * CFG::n_out + o]) * x[i];
    }
    y[o] = acc;
  }
}

// Convolution with zero padding, per-axis kernel, stride and dilation, and channel groups:
// output channel o reads the in_channels / groups input channels of its group. A 1-D
// convolution is this template with height 1.
template <class CFG>
void conv2d(const typename CFG::x_t x[CFG::in_channels * CFG::in_height * CFG::in_width],
            const typename CFG::wc_t w[CFG::out_channels * (CFG::in_channels / CFG::groups) *
                                       CFG::kernel_height * CFG::kernel_width],
            const typename CFG::bc_t b[CFG::out_channels], const int ch[],
            typename CFG::y_t y[CFG::out_channels * CFG::out_height * CFG::out_width]) {
  const int C_G = CFG::in_channels / CFG::groups, O_G = CFG::out_channels / CFG::groups;
  const int H = CFG::in_height, W = CFG::in_width;
  const int KH = CFG::kernel_height, KW = CFG::kernel_width;
  const int SH = CFG::stride_height, SW = CFG::stride_width;
  const int DH = CFG::dilation_height, DW = CFG::dilation_width;
  const int PT = CFG::pad_top, PL = CFG::pad_left, OH = CFG::out_height, OW = CFG::out_width;
ConvOut:
  for (int k = 0; k < CFG::n_channels; k++) {
    const int o = CFG::all_channels ? k : ch[k];
    const int c0 = o / O_G * C_G;  // the group's first input channel
  ConvRow:
    for (int oy = 0; oy < OH; oy++) {
    ConvCol:
      for (int ox = 0; ox < OW; ox++) {
        typename CFG::acc_t acc = from_code<typename CFG::b_t>(b[o]);
      ConvIn:
        for (int ci = 0; ci < C_G; ci++) {
        ConvKy:
          for (int ky = 0; ky < KH; ky++) {
          ConvKx:
            for (int kx = 0; kx < KW; kx++) {
#pragma HLS PIPELINE II = 1
              const int iy = oy * SH + ky * DH - PT;
              const int ix = ox * SW + kx * DW - PL;
              if (iy >= 0 && iy < H && ix >= 0 && ix < W) {  // zero padding adds nothing
                acc = acc + from_code<typename CFG::w_t>(w[((o * C_G + ci) * KH + ky) * KW + kx]) *
                                x[((c0 + ci) * H + iy) * W + ix];
              }
            }
          }
        }
        y[(o * OH + oy) * OW + ox] = acc;
      }
    }
  }
}

template <class CFG>
void batchnorm(const typename CFG::x_t x[CFG::channels * CFG::per_channel],
               const typename CFG::sc_t scale[CFG::channels],
               const typename CFG::tc_t shift[CFG::channels], const int ch[],
               typename CFG::y_t y[CFG::channels * CFG::per_channel]) {
  const int HW = CFG::per_channel;
BnChannel:
  for (int k = 0; k < CFG::n_channels; k++) {
    const int c = CFG::all_channels ? k : ch[k];
    const typename CFG::s_t s = from_code<typename CFG::s_t>(scale[c]);
    const typename CFG::t_t t = from_code<typename CFG::t_t>(shift[c]);
  BnPixel:
    for (int i = 0; i < HW; i++) {
#pragma HLS PIPELINE II = 1
      y[c * HW + i] = s * x[c * HW + i] + t;
    }
  }
}

// +1 where x >= 0, else -1 (a binarized network's activations), assigned to the output type.
template <class CFG>
void sign(const typename CFG::x_t x[CFG::n], typename CFG::y_t y[CFG::n]) {
Sign:
  for (int i = 0; i < CFG::n; i++) {
#pragma HLS PIPELINE II = 1
    const ap_int<2> s = x[i] >= 0 ? 1 : -1;
    y[i] = s;
  }
}

// PReLU: y = x where x >= 0, else slope[c] * x at full precision; assigned to the output type.
// CFG::one_slope: one slope for every channel (a leaky ReLU).
template <class CFG>
void prelu(const typename CFG::x_t x[CFG::channels * CFG::per_channel],
           const typename CFG::sc_t slope[CFG::channels], const int ch[],
           typename CFG::y_t y[CFG::channels * CFG::per_channel]) {
  const int HW = CFG::per_channel;
PreluChannel:
  for (int k = 0; k < CFG::n_channels; k++) {
    const int c = CFG::all_channels ? k : ch[k];
    const typename CFG::s_t s = from_code<typename CFG::s_t>(slope[CFG::one_slope ? 0 : c]);
  PreluPixel:
    for (int i = 0; i < HW; i++) {
#pragma HLS PIPELINE II = 1
      const typename CFG::x_t v = x[c * HW + i];
      if (v >= 0) {
        y[c * HW + i] = v;
      } else {
        y[c * HW + i] = s * v;
      }
    }
  }
}

// ---- Multiplier-free layers (K-hot constants) ----
// A layer whose weights (or BatchNorm scales) are K-hot is generated as straight-line code in
// model.cpp: every product w * x is written as shifts and adds of x's integer code, one term
// per non-zero (signed) digit of w's code, e.g. (c << 3) - c for w = 7, and loaded into the
// product's full-precision type -- the same value `w * x` has, so the accumulation is unchanged.
// The shift amounts are constants, so synthesis needs no multiplier (and no DSP) for them.

// Integer codes in K-hot products. Synthesis gets ap_int<WC>: exact widths, so each product is
// adders of just the bits it needs. C simulation gets a 64-bit integer (the generator checks
// WC <= 63), which holds the same values and compiles an order of magnitude faster in these
// long straight-line functions; define QFX_AP_INT_CODES to simulate the ap_int form instead.
#if defined(__SYNTHESIS__) || defined(QFX_AP_INT_CODES)
template <int WC>
struct code_type {
  typedef ap_int<WC> type;
};
#define QFX_CSIM_NOINLINE
#else
template <int WC>
struct code_type {
  typedef long long type;
};
// One out-of-line accumulation step per call keeps g++ from inlining thousands of ap_fixed
// operations into one function (minutes of compile time); synthesis inlines it (pragma below).
#define QFX_CSIM_NOINLINE __attribute__((noinline))
#endif

// x's integer code (its raw bits), sign-extended (XS: x's type is signed) or zero-extended.
template <int WC, bool XS, class x_t>
inline typename code_type<WC>::type code_of(const x_t x) {
#pragma HLS INLINE
  if (XS) {
    ap_int<x_t::width> c = x.range();
    return c;
  }
  ap_uint<x_t::width> c = x.range();
  return c;
}

// The integer codes of a whole input vector.
template <int WC, bool XS, class x_t, int N>
void codes_of(const x_t x[N], typename code_type<WC>::type c[N]) {
CodesOf:
  for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II = 1
    c[i] = code_of<WC, XS>(x[i]);
  }
}

// The codes of one convolution window over every input channel, c[(ci * KH + ky) * KW + kx]
// (output channel o's terms start at its group's first input channel); a padded tap reads 0,
// whose product is 0 and leaves the accumulator unchanged (the same as skipping it). CFG is the
// layer's configuration (a conv2d one) plus code_width (WC) and x_signed (XS).
template <class CFG>
void window_codes(const typename CFG::x_t x[CFG::in_channels * CFG::in_height * CFG::in_width],
                  int oy, int ox,
                  typename code_type<CFG::code_width>::type
                      c[CFG::in_channels * CFG::kernel_height * CFG::kernel_width]) {
  const int WC = CFG::code_width;
  const bool XS = CFG::x_signed;
  const int C_IN = CFG::in_channels, H = CFG::in_height, W = CFG::in_width;
  const int KH = CFG::kernel_height, KW = CFG::kernel_width;
  const int SH = CFG::stride_height, SW = CFG::stride_width;
  const int DH = CFG::dilation_height, DW = CFG::dilation_width;
  const int PT = CFG::pad_top, PL = CFG::pad_left;
WindowIn:
  for (int ci = 0; ci < C_IN; ci++) {
  WindowKy:
    for (int ky = 0; ky < KH; ky++) {
    WindowKx:
      for (int kx = 0; kx < KW; kx++) {
#pragma HLS PIPELINE II = 1
        const int iy = oy * SH + ky * DH - PT;
        const int ix = ox * SW + kx * DW - PL;
        const bool inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
        c[(ci * KH + ky) * KW + kx] = inside ? code_of<WC, XS>(x[(ci * H + iy) * W + ix])
                                             : typename code_type<WC>::type(0);
      }
    }
  }
}

// acc = acc + product, where `product` is the product's integer code (a sum of shifted input
// codes) loaded into the product's full-precision type p_t: exactly the loop templates'
// acc + w * x.
template <class acc_t, class p_t, class C>
QFX_CSIM_NOINLINE void mac(acc_t &acc, const C product) {
#pragma HLS INLINE
  acc = acc + from_code<p_t>(product);
}

// Max pooling: a kernel_height x kernel_width window moved by the strides, no padding (values
// only move: the output type is the input type). Global max pooling is one window over the map;
// 1-D pooling has height 1.
template <class CFG>
void maxpool2d(const typename CFG::x_t x[CFG::channels * CFG::in_height * CFG::in_width],
               typename CFG::y_t y[CFG::channels * CFG::out_height * CFG::out_width]) {
  typedef typename CFG::x_t x_t;
  const int C = CFG::channels, H = CFG::in_height, W = CFG::in_width;
  const int KH = CFG::kernel_height, KW = CFG::kernel_width;
  const int SH = CFG::stride_height, SW = CFG::stride_width;
  const int OH = CFG::out_height, OW = CFG::out_width;
PoolChannel:
  for (int c = 0; c < C; c++) {
  PoolRow:
    for (int oy = 0; oy < OH; oy++) {
    PoolCol:
      for (int ox = 0; ox < OW; ox++) {
        x_t m = x[(c * H + oy * SH) * W + ox * SW];
      PoolKy:
        for (int ky = 0; ky < KH; ky++) {
        PoolKx:
          for (int kx = 0; kx < KW; kx++) {
#pragma HLS PIPELINE II = 1
            const x_t v = x[(c * H + oy * SH + ky) * W + ox * SW + kx];
            if (v > m) m = v;
          }
        }
        y[(c * OH + oy) * OW + ox] = m;
      }
    }
  }
}

// Average pooling: the exact window sum (sum_t is wide enough) times the reciprocal constant;
// windows as maxpool2d's. Global average pooling is one window over the map.
template <class CFG>
void avgpool2d(const typename CFG::x_t x[CFG::channels * CFG::in_height * CFG::in_width],
               const typename CFG::rc_t reciprocal,
               typename CFG::y_t y[CFG::channels * CFG::out_height * CFG::out_width]) {
  typedef typename CFG::sum_t sum_t;
  const int C = CFG::channels, H = CFG::in_height, W = CFG::in_width;
  const int KH = CFG::kernel_height, KW = CFG::kernel_width;
  const int SH = CFG::stride_height, SW = CFG::stride_width;
  const int OH = CFG::out_height, OW = CFG::out_width;
  const typename CFG::r_t r = from_code<typename CFG::r_t>(reciprocal);
AvgChannel:
  for (int c = 0; c < C; c++) {
  AvgRow:
    for (int oy = 0; oy < OH; oy++) {
    AvgCol:
      for (int ox = 0; ox < OW; ox++) {
        sum_t s = 0;
      AvgKy:
        for (int ky = 0; ky < KH; ky++) {
        AvgKx:
          for (int kx = 0; kx < KW; kx++) {
#pragma HLS PIPELINE II = 1
            s = s + x[(c * H + oy * SH + ky) * W + ox * SW + kx];
          }
        }
        y[(c * OH + oy) * OW + ox] = s * r;
      }
    }
  }
}

// ResNet option-A shortcut: subsample by `stride`, then append `pad_channels` zero channels.
template <class CFG>
void shortcut(const typename CFG::x_t x[CFG::channels * CFG::in_height * CFG::in_width],
              typename CFG::y_t y[(CFG::channels + CFG::pad_channels) *
                                  ((CFG::in_height + CFG::stride - 1) / CFG::stride) *
                                  ((CFG::in_width + CFG::stride - 1) / CFG::stride)]) {
  const int C = CFG::channels, H = CFG::in_height, W = CFG::in_width, S = CFG::stride;
  const int PAD = CFG::pad_channels;
  const int OH = (H + S - 1) / S, OW = (W + S - 1) / S;
ShortcutChannel:
  for (int c = 0; c < C + PAD; c++) {
    for (int oy = 0; oy < OH; oy++) {
      for (int ox = 0; ox < OW; ox++) {
#pragma HLS PIPELINE II = 1
        if (c < C) {
          y[(c * OH + oy) * OW + ox] = x[(c * H + oy * S) * W + ox * S];
        } else {
          y[(c * OH + oy) * OW + ox] = 0;
        }
      }
    }
  }
}

}  // namespace qfx

#endif  // QFX_LAYERS_H_
