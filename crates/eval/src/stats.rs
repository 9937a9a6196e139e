//! Statistics over a run: pass rates with Wilson 95% intervals, pass@k, the exact McNemar test
//! on paired labels against a baseline, and the labels that flipped.

/// A pass rate with its Wilson score interval at 95%.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Rate {
    pub passed: u64,
    pub total: u64,
    pub rate: f64,
    pub low: f64,
    pub high: f64,
}

/// The Wilson score interval (z = 1.96) of `passed` out of `total`.
pub fn wilson(passed: u64, total: u64) -> Rate {
    if total == 0 {
        return Rate {
            passed,
            total,
            rate: 0.0,
            low: 0.0,
            high: 0.0,
        };
    }
    let z = 1.959_963_984_540_054_f64;
    let n = total as f64;
    let p = passed as f64 / n;
    let denominator = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denominator;
    let half = z * ((p * (1.0 - p) / n) + z * z / (4.0 * n * n)).sqrt() / denominator;
    Rate {
        passed,
        total,
        rate: p,
        low: (centre - half).max(0.0),
        high: (centre + half).min(1.0),
    }
}

/// The unbiased pass@k estimate for one label with `c` passes out of `n` attempts:
/// 1 − C(n−c, k) / C(n, k).
pub fn pass_at_k(n: u64, c: u64, k: u64) -> f64 {
    if n == 0 || k == 0 {
        return 0.0;
    }
    if n - c < k {
        return 1.0;
    }
    let mut fail_all = 1.0;
    for i in (n - c + 1)..=n {
        fail_all *= 1.0 - k as f64 / i as f64;
    }
    1.0 - fail_all
}

/// The two-sided exact McNemar p-value for `b` labels that went one way and `c` the other:
/// a binomial test of min(b, c) in b + c trials at 1/2.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let n = b + c;
    if n == 0 {
        return 1.0;
    }
    let k = b.min(c);
    // P(X <= k) for X ~ Bin(n, 1/2), in log space to stay finite for large n.
    let ln_half_n = n as f64 * 0.5f64.ln();
    let mut ln_choose = 0.0; // ln C(n, 0)
    let mut tail = 0.0;
    for i in 0..=k {
        if i > 0 {
            ln_choose += ((n - i + 1) as f64).ln() - (i as f64).ln();
        }
        tail += (ln_choose + ln_half_n).exp();
    }
    (2.0 * tail).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_the_textbook_interval() {
        let r = wilson(8, 10);
        assert!((r.low - 0.4902).abs() < 1e-3, "{r:?}");
        assert!((r.high - 0.9433).abs() < 1e-3, "{r:?}");
        let none = wilson(0, 20);
        assert_eq!(none.low, 0.0);
        assert!((none.high - 0.1611).abs() < 1e-3);
    }

    #[test]
    fn mcnemar_is_a_two_sided_binomial_test() {
        // 0 of 6 discordant pairs one way: 2 * 0.5^6.
        assert!((mcnemar_exact(0, 6) - 0.03125).abs() < 1e-12);
        assert!((mcnemar_exact(2, 8) - 0.109375).abs() < 1e-9);
        assert_eq!(mcnemar_exact(5, 5), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
    }

    #[test]
    fn pass_at_k_is_the_unbiased_estimate() {
        assert_eq!(pass_at_k(5, 0, 1), 0.0);
        assert!((pass_at_k(5, 1, 1) - 0.2).abs() < 1e-12);
        // 1 - C(3,2)/C(5,2) = 1 - 3/10.
        assert!((pass_at_k(5, 2, 2) - 0.7).abs() < 1e-12);
        assert_eq!(pass_at_k(3, 2, 2), 1.0);
    }
}
