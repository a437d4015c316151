// qfx layer library: the numerics of every qfx-ir operation, written once by hand.
// Copied verbatim by qfx's HLS exporter; the generated files only instantiate these templates
// with the model's types and constants.
//
// Semantics (identical to the qfx integer engine, bit for bit):
//   - constants are integer codes; `from_code` loads one as raw bits (never a decimal float);
//   - dense / conv2d: acc = cast(bias); acc = cast(acc + w * x) after every product, bias first,
//     then input channels, kernel rows, kernel columns (padded taps are skipped: they add nothing);
//     the product and the sum are exact (ap_fixed full precision), the assignment to acc_t rounds
//     and overflows as acc_t says; the result is then assigned to the output type;
//   - batchnorm: y = scale[c] * x + shift[c] at full precision, assigned to the output type;
//   - prelu: y = x where x >= 0, else slope[c] * x at full precision; sign: y = x >= 0 ? 1 : -1;
//   - per-channel formats: a layer's channels are processed in groups that share their weight /
//     bias / accumulator types (`ch` lists a group's channels; IDENTITY means "all, in order").
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
template <class x_t, class y_t, int N>
void cast(const x_t x[N], y_t y[N]) {
Cast:
  for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II = 1
    y[i] = x[i];
  }
}

template <class a_t, class b_t, class y_t, int N>
void add(const a_t a[N], const b_t b[N], y_t y[N]) {
Add:
  for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II = 1
    y[i] = a[i] + b[i];
  }
}

// max(x, 0), then min(., clip) when CLIP.
template <class x_t, class y_t, int N, bool CLIP>
void relu(const x_t x[N], y_t y[N], const clip_t clip) {
Relu:
  for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II = 1
    x_t v = x[i];
    if (v < 0) v = 0;
    if (CLIP && v > clip) {
      y[i] = clip;
    } else {
      y[i] = v;
    }
  }
}

template <class x_t, class w_t, class b_t, class acc_t, class y_t, class wc_t, class bc_t,
          int N_IN, int N_OUT, int N_CH, bool IDENTITY>
void dense(const x_t x[N_IN], const wc_t w[N_IN * N_OUT], const bc_t b[N_OUT], const int ch[],
           y_t y[N_OUT]) {
DenseOut:
  for (int k = 0; k < N_CH; k++) {
    const int o = IDENTITY ? k : ch[k];
    acc_t acc = from_code<b_t>(b[o]);
  DenseIn:
    for (int i = 0; i < N_IN; i++) {
#pragma HLS PIPELINE II = 1
      acc = acc + from_code<w_t>(w[i * N_OUT + o]) * x[i];
    }
    y[o] = acc;
  }
}

template <class x_t, class w_t, class b_t, class acc_t, class y_t, class wc_t, class bc_t,
          int C_IN, int H, int W, int C_OUT, int K, int S, int P, int OH, int OW, int N_CH,
          bool IDENTITY>
void conv2d(const x_t x[C_IN * H * W], const wc_t w[C_OUT * C_IN * K * K], const bc_t b[C_OUT],
            const int ch[], y_t y[C_OUT * OH * OW]) {
ConvOut:
  for (int k = 0; k < N_CH; k++) {
    const int o = IDENTITY ? k : ch[k];
  ConvRow:
    for (int oy = 0; oy < OH; oy++) {
    ConvCol:
      for (int ox = 0; ox < OW; ox++) {
        acc_t acc = from_code<b_t>(b[o]);
      ConvIn:
        for (int ci = 0; ci < C_IN; ci++) {
        ConvKy:
          for (int ky = 0; ky < K; ky++) {
          ConvKx:
            for (int kx = 0; kx < K; kx++) {
#pragma HLS PIPELINE II = 1
              const int iy = oy * S + ky - P;
              const int ix = ox * S + kx - P;
              if (iy >= 0 && iy < H && ix >= 0 && ix < W) {  // zero padding adds nothing
                acc = acc + from_code<w_t>(w[((o * C_IN + ci) * K + ky) * K + kx]) *
                                x[(ci * H + iy) * W + ix];
              }
            }
          }
        }
        y[(o * OH + oy) * OW + ox] = acc;
      }
    }
  }
}

template <class x_t, class s_t, class t_t, class y_t, class sc_t, class tc_t, int C, int HW,
          int N_CH, bool IDENTITY>
void batchnorm(const x_t x[C * HW], const sc_t scale[C], const tc_t shift[C], const int ch[],
               y_t y[C * HW]) {
BnChannel:
  for (int k = 0; k < N_CH; k++) {
    const int c = IDENTITY ? k : ch[k];
    const s_t s = from_code<s_t>(scale[c]);
    const t_t t = from_code<t_t>(shift[c]);
  BnPixel:
    for (int i = 0; i < HW; i++) {
#pragma HLS PIPELINE II = 1
      y[c * HW + i] = s * x[c * HW + i] + t;
    }
  }
}

// +1 where x >= 0, else -1 (a binarized network's activations), assigned to the output type.
template <class x_t, class y_t, int N>
void sign(const x_t x[N], y_t y[N]) {
Sign:
  for (int i = 0; i < N; i++) {
#pragma HLS PIPELINE II = 1
    const ap_int<2> s = x[i] >= 0 ? 1 : -1;
    y[i] = s;
  }
}

// PReLU: y = x where x >= 0, else slope[c] * x at full precision; assigned to the output type.
template <class x_t, class s_t, class y_t, class sc_t, int C, int HW, int N_CH, bool IDENTITY>
void prelu(const x_t x[C * HW], const sc_t slope[C], const int ch[], y_t y[C * HW]) {
PreluChannel:
  for (int k = 0; k < N_CH; k++) {
    const int c = IDENTITY ? k : ch[k];
    const s_t s = from_code<s_t>(slope[c]);
  PreluPixel:
    for (int i = 0; i < HW; i++) {
#pragma HLS PIPELINE II = 1
      const x_t v = x[c * HW + i];
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

// The codes of one convolution window, c[(ci * K + ky) * K + kx]; a padded tap reads 0, whose
// product is 0 and leaves the accumulator unchanged (the same as skipping it).
template <int WC, bool XS, class x_t, int C_IN, int H, int W, int K, int S, int P>
void window_codes(const x_t x[C_IN * H * W], int oy, int ox,
                  typename code_type<WC>::type c[C_IN * K * K]) {
WindowIn:
  for (int ci = 0; ci < C_IN; ci++) {
  WindowKy:
    for (int ky = 0; ky < K; ky++) {
    WindowKx:
      for (int kx = 0; kx < K; kx++) {
#pragma HLS PIPELINE II = 1
        const int iy = oy * S + ky - P;
        const int ix = ox * S + kx - P;
        const bool inside = iy >= 0 && iy < H && ix >= 0 && ix < W;
        c[(ci * K + ky) * K + kx] = inside ? code_of<WC, XS>(x[(ci * H + iy) * W + ix])
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

// K x K max pooling with stride K (values only move: the output type is the input type).
template <class x_t, class y_t, int C, int H, int W, int K>
void maxpool2d(const x_t x[C * H * W], y_t y[C * (H / K) * (W / K)]) {
PoolChannel:
  for (int c = 0; c < C; c++) {
  PoolRow:
    for (int oy = 0; oy < H / K; oy++) {
    PoolCol:
      for (int ox = 0; ox < W / K; ox++) {
#pragma HLS PIPELINE II = 1
        x_t m = x[(c * H + oy * K) * W + ox * K];
        for (int t = 1; t < K * K; t++) {
          const x_t v = x[(c * H + oy * K + t / K) * W + ox * K + t % K];
          if (v > m) m = v;
        }
        y[(c * (H / K) + oy) * (W / K) + ox] = m;
      }
    }
  }
}

// Mean over H*W: the exact sum (sum_t is wide enough) times the reciprocal constant.
template <class x_t, class sum_t, class r_t, class y_t, class rc_t, int C, int HW>
void global_avg_pool(const x_t x[C * HW], const rc_t reciprocal, y_t y[C]) {
  const r_t r = from_code<r_t>(reciprocal);
GapChannel:
  for (int c = 0; c < C; c++) {
    sum_t s = 0;
  GapSum:
    for (int i = 0; i < HW; i++) {
#pragma HLS PIPELINE II = 1
      s = s + x[c * HW + i];
    }
    y[c] = s * r;
  }
}

// ResNet option-A shortcut: subsample by S, then PAD zero channels.
template <class x_t, class y_t, int C, int H, int W, int S, int PAD>
void shortcut(const x_t x[C * H * W], y_t y[(C + PAD) * ((H + S - 1) / S) * ((W + S - 1) / S)]) {
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
