//! Common subexpressions of a constant matrix times a vector: the greedy most-frequent-pair
//! heuristic (Hartley's CSE for constant multiplication, as da4ml applies it to network
//! layers).
//!
//! Each output ("row") is a sum of signed, shifted variables: the canonical signed digits of
//! its weights applied to the inputs, `Σ ±x_j·2^k`. A *pattern* is two terms of one row,
//! `x_a·2^s` and `±x_b·2^(s+d)`, written `(a, b, d, ±)` with the term of lower shift (then lower
//! variable) first; it stands for the new variable `t = x_a ± x_b·2^d`, one adder. Repeatedly:
//! take the pattern that occurs most often over all rows (ties: the smallest `(a, b, d, ±)`,
//! so the result is deterministic), give it a variable, and replace its non-overlapping
//! occurrences in every row (lowest shift first) by `±t·2^s`. Stop when no pattern occurs
//! twice. A pattern of one variable with itself (`x + x·2^d`) shares an odd multiple of one
//! input between outputs, so per-input constant sharing falls out of the same rule.
//!
//! Every row is then summed by a balanced tree. Adders: one per shared variable plus
//! `terms − 1` per row, against `Σ (digits − 1)` per row without sharing ([`Shared::adders`],
//! [`plain_adders`]).
//!
//! Counting all pairs of a row is quadratic in its terms. When the initial count exceeds the
//! budget, the variables are split into consecutive blocks of equal size small enough to fit it,
//! and each block is shared on its own (rows are cut into per-block partial rows, still summed
//! as one tree): patterns across blocks are then not found, which costs some sharing on very
//! wide layers and keeps the generator's time near-linear.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};

/// One term of a row: `(−1)^neg · var · 2^shift`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Term {
    pub var: u32,
    pub shift: u32,
    pub neg: bool,
}

/// A shared variable: `var(a) + (−1)^neg · var(b) · 2^shift`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Pair {
    pub a: u32,
    pub b: u32,
    pub shift: u32,
    pub neg: bool,
}

/// The result: variables `0..inputs` are the inputs, `inputs + i` is `pairs[i]` (which only
/// refers to lower-numbered variables); each row is a sum of terms.
#[derive(Clone, Debug)]
pub(crate) struct Shared {
    pub pairs: Vec<Pair>,
    pub rows: Vec<Vec<Term>>,
}

#[cfg(test)]
impl Shared {
    /// Adders to compute every row: one per shared variable, `terms − 1` per row.
    pub fn adders(&self) -> u64 {
        self.pairs.len() as u64 + plain_adders(&self.rows)
    }
}

/// Adders of summing every row with no sharing: `terms − 1` per row.
#[cfg(test)]
pub(crate) fn plain_adders(rows: &[Vec<Term>]) -> u64 {
    rows.iter().map(|r| r.len().saturating_sub(1) as u64).sum()
}

/// Initial pair count above which the variables are shared in blocks (see the module docs).
pub(crate) const PAIR_BUDGET: u64 = 4_000_000;

/// Shares common subexpressions of `rows` over `inputs` variables (see the module docs).
pub(crate) fn share(inputs: u32, rows: Vec<Vec<Term>>, budget: u64) -> Shared {
    let pairs_of = |rows: &[Vec<Term>]| -> u64 {
        rows.iter()
            .map(|r| (r.len() as u64) * (r.len() as u64).saturating_sub(1) / 2)
            .sum()
    };
    let total = pairs_of(&rows);
    let mut next = inputs;
    let mut pairs = Vec::new();
    if total <= budget || inputs <= 1 {
        let rows = Sharer::new(rows).run(&mut next, &mut pairs);
        return Shared { pairs, rows };
    }
    // Pairs grow with the square of a block's width.
    let scale = (budget as f64 / total as f64).sqrt();
    let block = ((inputs as f64 * scale).floor() as u32).clamp(1, inputs);
    let blocks = inputs.div_ceil(block);
    let mut out: Vec<Vec<Term>> = vec![Vec::new(); rows.len()];
    for k in 0..blocks {
        let part: Vec<Vec<Term>> = rows
            .iter()
            .map(|r| r.iter().filter(|t| t.var / block == k).copied().collect())
            .collect();
        let done = Sharer::new(part).run(&mut next, &mut pairs);
        for (o, r) in out.iter_mut().zip(done) {
            o.extend(r);
        }
    }
    Shared { pairs, rows: out }
}

/// The pattern of two terms of a row, or `None` for a term with itself at the same shift.
fn pattern(u: Term, v: Term) -> Option<Pair> {
    let (p, q) = if (u.shift, u.var) <= (v.shift, v.var) {
        (u, v)
    } else {
        (v, u)
    };
    if p.shift == q.shift && p.var == q.var {
        return None;
    }
    Some(Pair {
        a: p.var,
        b: q.var,
        shift: q.shift - p.shift,
        neg: p.neg != q.neg,
    })
}

/// The greedy loop's state: pattern counts, a max-heap of `(count, pattern)` with stale entries
/// skipped, and the rows each pattern was seen in.
struct Sharer {
    rows: Vec<Vec<Term>>,
    counts: HashMap<Pair, u32>,
    heap: BinaryHeap<(u32, Reverse<Pair>)>,
    seen_in: HashMap<Pair, Vec<u32>>,
}

impl Sharer {
    fn new(rows: Vec<Vec<Term>>) -> Sharer {
        let mut s = Sharer {
            rows,
            counts: HashMap::new(),
            heap: BinaryHeap::new(),
            seen_in: HashMap::new(),
        };
        for r in 0..s.rows.len() {
            let row = s.rows[r].clone();
            for i in 0..row.len() {
                for j in i + 1..row.len() {
                    if let Some(p) = pattern(row[i], row[j]) {
                        *s.counts.entry(p).or_default() += 1;
                        let list = s.seen_in.entry(p).or_default();
                        if list.last() != Some(&(r as u32)) {
                            list.push(r as u32);
                        }
                    }
                }
            }
        }
        let mut entries: Vec<(u32, Reverse<Pair>)> = s
            .counts
            .iter()
            .filter(|(_, &c)| c >= 2)
            .map(|(&p, &c)| (c, Reverse(p)))
            .collect();
        entries.sort();
        s.heap = entries.into();
        s
    }

    fn bump(&mut self, p: Pair, row: u32, up: bool) {
        let c = self.counts.entry(p).or_default();
        if up {
            *c += 1;
            let list = self.seen_in.entry(p).or_default();
            if list.last() != Some(&row) {
                list.push(row);
            }
        } else {
            *c -= 1;
        }
        let c = *c;
        if c >= 2 {
            self.heap.push((c, Reverse(p)));
        }
    }

    /// Non-overlapping occurrences of `p` in row `r`, as index pairs, lowest shift first.
    fn occurrences(&self, p: Pair, r: usize) -> Vec<(usize, usize)> {
        let row = &self.rows[r];
        let mut at: HashMap<(u32, u32), Vec<usize>> = HashMap::new();
        for (i, t) in row.iter().enumerate() {
            at.entry((t.var, t.shift)).or_default().push(i);
        }
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by_key(|&i| (row[i].shift, row[i].var, row[i].neg));
        let mut used = vec![false; row.len()];
        let mut found = Vec::new();
        for i in order {
            let t = row[i];
            if used[i] || t.var != p.a {
                continue;
            }
            let Some(cands) = at.get(&(p.b, t.shift + p.shift)) else {
                continue;
            };
            let partner = cands
                .iter()
                .copied()
                .find(|&j| j != i && !used[j] && row[j].neg == (t.neg != p.neg));
            if let Some(j) = partner {
                used[i] = true;
                used[j] = true;
                found.push((i, j));
            }
        }
        found
    }

    fn run(mut self, next: &mut u32, pairs: &mut Vec<Pair>) -> Vec<Vec<Term>> {
        let mut dead: HashSet<Pair> = HashSet::new();
        while let Some((c, Reverse(p))) = self.heap.pop() {
            if self.counts.get(&p) != Some(&c) || dead.contains(&p) {
                continue;
            }
            let mut rows = self.seen_in.remove(&p).unwrap_or_default();
            rows.sort_unstable();
            rows.dedup();
            let found: Vec<(u32, Vec<(usize, usize)>)> = rows
                .iter()
                .map(|&r| (r, self.occurrences(p, r as usize)))
                .filter(|(_, o)| !o.is_empty())
                .collect();
            let total: usize = found.iter().map(|(_, o)| o.len()).sum();
            if total < 2 {
                // Only overlapping occurrences (x + x·2 + x·4): sharing would save nothing.
                dead.insert(p);
                continue;
            }
            let var = *next;
            *next += 1;
            pairs.push(p);
            for (r, occ) in found {
                self.substitute(r, &occ, var);
            }
        }
        self.rows
    }

    /// Replaces the occurrences `occ` in row `r` by the new variable, keeping counts current.
    fn substitute(&mut self, r: u32, occ: &[(usize, usize)], var: u32) {
        let row = std::mem::take(&mut self.rows[r as usize]);
        let mut removed = vec![false; row.len()];
        let mut added = Vec::with_capacity(occ.len());
        for &(i, j) in occ {
            removed[i] = true;
            removed[j] = true;
            added.push(Term {
                var,
                shift: row[i].shift,
                neg: row[i].neg,
            });
        }
        let kept: Vec<Term> = row
            .iter()
            .zip(&removed)
            .filter(|(_, &x)| !x)
            .map(|(t, _)| *t)
            .collect();
        let gone: Vec<Term> = row
            .iter()
            .zip(&removed)
            .filter(|(_, &x)| x)
            .map(|(t, _)| *t)
            .collect();
        for (i, &g) in gone.iter().enumerate() {
            for &k in kept.iter().chain(&gone[i + 1..]) {
                if let Some(p) = pattern(g, k) {
                    self.bump(p, r, false);
                }
            }
        }
        for (i, &a) in added.iter().enumerate() {
            for &k in kept.iter().chain(&added[i + 1..]) {
                if let Some(p) = pattern(a, k) {
                    self.bump(p, r, true);
                }
            }
        }
        let mut new_row = kept;
        new_row.extend(added);
        self.rows[r as usize] = new_row;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of every row for input values `x`, through the shared variables.
    fn evaluate(s: &Shared, x: &[i128]) -> Vec<i128> {
        let mut v: Vec<i128> = x.to_vec();
        for p in &s.pairs {
            let b = v[p.b as usize] << p.shift;
            v.push(v[p.a as usize] + if p.neg { -b } else { b });
        }
        s.rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|t| {
                        let y = v[t.var as usize] << t.shift;
                        if t.neg {
                            -y
                        } else {
                            y
                        }
                    })
                    .sum()
            })
            .collect()
    }

    /// Rows of CSD digits for a weight matrix `w[row][input]`.
    fn rows_of(w: &[Vec<i64>]) -> Vec<Vec<Term>> {
        w.iter()
            .map(|r| {
                r.iter()
                    .enumerate()
                    .flat_map(|(j, &c)| {
                        qfx_fixed::khot::signed_digits(c as i128, true).map(move |d| Term {
                            var: j as u32,
                            shift: d.shift,
                            neg: d.negative,
                        })
                    })
                    .collect()
            })
            .collect()
    }

    fn direct(w: &[Vec<i64>], x: &[i128]) -> Vec<i128> {
        w.iter()
            .map(|r| r.iter().zip(x).map(|(&c, &v)| c as i128 * v).sum())
            .collect()
    }

    #[test]
    fn sharing_keeps_every_sum_and_saves_adders() {
        let mut rng = qfx_testkit::Rng::seeded(3);
        for (rows, cols, budget) in [(8, 6, PAIR_BUDGET), (16, 24, PAIR_BUDGET), (12, 40, 300)] {
            let w: Vec<Vec<i64>> = (0..rows)
                .map(|_| (0..cols).map(|_| rng.range(-31, 31)).collect())
                .collect();
            let plain = rows_of(&w);
            let before = plain_adders(&plain);
            let shared = share(cols as u32, plain, budget);
            assert!(shared.adders() < before, "{} vs {before}", shared.adders());
            for _ in 0..20 {
                let x: Vec<i128> = (0..cols).map(|_| rng.range(-128, 127) as i128).collect();
                assert_eq!(evaluate(&shared, &x), direct(&w, &x));
            }
            // Deterministic: the same matrix gives the same plan.
            let again = share(cols as u32, rows_of(&w), budget);
            assert_eq!(again.pairs, shared.pairs);
            assert_eq!(again.rows, shared.rows);
        }
    }

    #[test]
    fn one_input_times_repeated_constants_is_computed_once() {
        // 3x appears in all four rows: one adder for it, none per row.
        let w = vec![vec![3], vec![6], vec![-3], vec![12]];
        let s = share(1, rows_of(&w), PAIR_BUDGET);
        assert_eq!(s.pairs.len(), 1);
        assert_eq!(s.adders(), 1);
        assert_eq!(evaluate(&s, &[5]), vec![15, 30, -15, 60]);
    }
}
