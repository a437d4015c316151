//! A safe face on the `gemm` crate (the maintained GEMM burn's Flex backend already uses): the
//! one place in this crate that passes raw pointers, after checking every index the call can
//! touch against the slices it was given.

/// A read-only matrix view over a slice: `rows × cols`, element `(r, c)` at `r·row_stride +
/// c·col_stride`.
#[derive(Clone, Copy, Debug)]
pub struct MatRef<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<'a> MatRef<'a> {
    /// The first `rows·cols` elements of `data`, row after row.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> MatRef<'a> {
        MatRef {
            data,
            rows,
            cols,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose (no copy).
    pub fn t(self) -> MatRef<'a> {
        MatRef {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// True when every element the view addresses lies inside its slice.
    fn in_bounds(&self) -> bool {
        if self.rows == 0 || self.cols == 0 {
            return true;
        }
        let last = (self.rows - 1)
            .checked_mul(self.row_stride)
            .and_then(|r| r.checked_add((self.cols - 1).checked_mul(self.col_stride)?));
        last.is_some_and(|last| last < self.data.len())
            && self.row_stride <= isize::MAX as usize
            && self.col_stride <= isize::MAX as usize
    }
}

/// Whether one product may spread over rayon's threads (the caller is not already parallel).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Threads {
    /// On the calling thread.
    One,
    /// Over rayon's pool.
    All,
}

/// `dst = a·b` (or `dst += a·b` with `accumulate`), `dst` row-major `a.rows × b.cols`.
///
/// Panics when the shapes disagree or a view leaves its slice: both are bugs in the caller,
/// never a property of user data.
pub fn matmul(dst: &mut [f32], a: MatRef, b: MatRef, accumulate: bool, threads: Threads) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert_eq!(b.rows, k, "matmul: inner dimensions {k} and {}", b.rows);
    assert_eq!(
        dst.len(),
        m * n,
        "matmul: destination of {} for {m}×{n}",
        dst.len()
    );
    assert!(
        a.in_bounds() && b.in_bounds(),
        "matmul: a view leaves its slice"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst.fill(0.0);
        }
        return;
    }
    let parallelism = match threads {
        Threads::One => gemm::Parallelism::None,
        Threads::All => gemm::Parallelism::Rayon(0),
    };
    // SAFETY: `dst` is an exclusive, contiguous `m × n` row-major buffer (length checked); `a`
    // and `b` address only elements inside their slices (`in_bounds`), with strides that fit
    // `isize`; the three do not alias because `dst` is borrowed mutably. `gemm` reads `dst`
    // only when `accumulate` is set, and then every element is initialized (it is a slice).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obviously-correct triple loop.
    fn naive(a: MatRef, b: MatRef) -> Vec<f32> {
        let mut out = vec![0f32; a.rows * b.cols];
        for r in 0..a.rows {
            for c in 0..b.cols {
                out[r * b.cols + c] = (0..a.cols)
                    .map(|i| {
                        a.data[r * a.row_stride + i * a.col_stride]
                            * b.data[i * b.row_stride + c * b.col_stride]
                    })
                    .sum();
            }
        }
        out
    }

    #[test]
    fn products_and_transposes_match_the_triple_loop() {
        let data: Vec<f32> = (0..200)
            .map(|i| ((i * 37 % 17) as f32 - 8.0) / 4.0)
            .collect();
        for (m, k, n) in [(1, 1, 1), (3, 5, 7), (8, 1, 9), (13, 11, 2)] {
            let a = MatRef::row_major(&data, m, k);
            let at = MatRef::row_major(&data[3..], k, m).t();
            let b = MatRef::row_major(&data[50..], k, n);
            let bt = MatRef::row_major(&data[100..], n, k).t();
            for (a, b) in [(a, b), (at, b), (a, bt), (at, bt)] {
                let want = naive(a, b);
                let mut got = vec![f32::NAN; m * n];
                matmul(&mut got, a, b, false, Threads::One);
                assert_eq!(got, want, "{m}×{k}×{n}");
                // Accumulating adds the product once more.
                matmul(&mut got, a, b, true, Threads::All);
                let twice: Vec<f32> = want.iter().map(|v| 2.0 * v).collect();
                assert_eq!(got, twice, "{m}×{k}×{n} accumulated");
            }
        }
    }

    #[test]
    #[should_panic(expected = "leaves its slice")]
    fn a_view_past_its_slice_is_refused() {
        let data = [1f32; 5];
        let mut dst = [0f32; 4];
        matmul(
            &mut dst,
            MatRef::row_major(&data, 2, 3),
            MatRef::row_major(&data, 3, 2),
            false,
            Threads::One,
        );
    }
}
