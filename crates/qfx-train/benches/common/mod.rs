//! What the training benchmarks share: their start-up (the process settings `qfx` uses) and
//! argument reading.

/// The allocator and kernel settings `qfx` applies at start-up, `QFX_KERNELS` included;
/// returns the kernels chosen.
pub fn start() -> qfx_train::kernels::Kernels {
    qfx_train::kernels::keep_freed_buffers();
    let kernels = qfx_train::kernels::kernels_from_env().unwrap_or_else(|e| panic!("{e}"));
    qfx_train::kernels::set_kernels(kernels);
    kernels
}

/// The value after `name` on the command line.
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// The median (the upper one for an even count) of non-empty `v`.
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
