//! Slice-quantize throughput against a plain memcpy of the same data, 1 and 2 threads.
//!
//! `cargo bench -p qfx-fixed --bench slice_quantize` prints a table; with `--json PATH` it also
//! writes the timings for `bench/slice_quantize.sh`, which adds PyTorch's composed emulation
//! measured in the same run. A ratio is `t(memcpy) / t(kernel)` for the same number of
//! elements: 100% means the kernel moves data as fast as a copy.

use std::time::Instant;

use qfx_fixed::{Format, SliceQuantizer};

const N: usize = 16 << 20;
const REPEATS: usize = 7;

/// Best of `REPEATS` runs, in seconds (the minimum is the least noisy estimate on a busy machine).
fn best(mut f: impl FnMut()) -> f64 {
    f(); // warm up: page faults, caches
    (0..REPEATS)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn parallel_copy(src: &[f32], dst: &mut [f32], threads: usize) {
    let chunk = src.len().div_ceil(threads);
    std::thread::scope(|s| {
        for (a, b) in src.chunks(chunk).zip(dst.chunks_mut(chunk)) {
            s.spawn(move || b.copy_from_slice(a));
        }
    });
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let json_path = args
        .iter()
        .position(|a| a == "--json")
        .and_then(|i| args.get(i + 1))
        .cloned();

    // Deterministic, roughly normal data (sum of uniforms) with sigma about 2.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut uniform = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let xs: Vec<f32> = (0..N)
        .map(|_| (0..4).map(|_| uniform()).sum::<f32>() * 3.5 - 7.0)
        .collect();
    let mut ys = vec![0f32; N];
    let mut clip = vec![0i8; N];

    let mut rows = Vec::new();
    for threads in [1usize, 2] {
        let copy = best(|| parallel_copy(&xs, &mut ys, threads));
        rows.push(("memcpy".to_string(), threads, copy, copy));
        for ty in [
            "ap_fixed<8,3,AP_RND_CONV,AP_SAT>",
            "ap_fixed<16,6,AP_TRN,AP_WRAP>",
        ] {
            let q = SliceQuantizer::new(ty.parse::<Format>().unwrap());
            let t = best(|| {
                q.quantize(&xs, &mut ys, &mut clip, threads).unwrap();
            });
            rows.push((ty.to_string(), threads, t, copy));
        }
    }
    println!("slice quantize, {N} f32 values, best of {REPEATS}");
    println!(
        "{:<36}{:>8}{:>10}{:>12}{:>12}",
        "kernel", "threads", "ms", "GB/s in", "vs memcpy"
    );
    for (name, threads, t, copy) in &rows {
        println!(
            "{name:<36}{threads:>8}{:>10.2}{:>12.2}{:>11.0}%",
            t * 1e3,
            (N * 4) as f64 / t / 1e9,
            100.0 * copy / t
        );
    }
    if let Some(path) = json_path {
        let items: Vec<String> = rows
            .iter()
            .map(|(name, threads, t, _)| {
                format!("{{\"kernel\":\"qfx {name}\",\"threads\":{threads},\"seconds\":{t}}}")
            })
            .collect();
        std::fs::write(
            &path,
            format!("{{\"n\":{N},\"results\":[{}]}}\n", items.join(",")),
        )
        .expect("write json");
    }
}
