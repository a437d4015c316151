//! The Xilinx `ap_types` headers, fetched and cached by [`qfx_cpp::headers`] (kept here under
//! its old path for callers of the oracle).

pub use qfx_cpp::headers::{ensure_headers, HLS4ML_VERSION};
