// SPDX-License-Identifier: GPL-2.0

//! Spread and paired ratios for the benchmarks: a figure is printed as
//! min / median / max, a comparison as the ratio of each round's pair,
//! and two series whose ranges overlap as "no difference" (the spread is
//! larger than the difference: one run cannot tell them apart).

/// min, median and max of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    /// The spread of `v`; None for an empty series.
    pub fn of(v: &[f64]) -> Option<Self> {
        let mut s = v.to_vec();
        s.sort_by(f64::total_cmp);
        Some(Spread {
            min: *s.first()?,
            median: s[s.len() / 2],
            max: *s.last()?,
        })
    }

    /// "min / median / max", each scaled by `div` and printed with `prec`
    /// decimals.
    pub fn show(&self, div: f64, prec: usize) -> String {
        format!(
            "{:.p$} / {:.p$} / {:.p$}",
            self.min / div,
            self.median / div,
            self.max / div,
            p = prec
        )
    }

    /// Whether every value of `self` lies below every value of `other`.
    pub fn below(&self, other: &Spread) -> bool {
        self.max < other.min
    }
}

/// [`Spread::show`] of `v`, or "-" for an empty series.
pub fn show(v: &[f64], div: f64, prec: usize) -> String {
    Spread::of(v).map_or("-".into(), |s| s.show(div, prec))
}

/// The ratios a[i] / b[i] of the rounds both series have.
pub fn paired(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x / y).collect()
}

/// How `a` compares with `b` (a / b): the paired ratios' spread, or "no
/// difference" when the two series' ranges overlap.
pub fn verdict(a: &[f64], b: &[f64]) -> String {
    let (Some(sa), Some(sb), Some(r)) = (Spread::of(a), Spread::of(b), Spread::of(&paired(a, b)))
    else {
        return "no figures".into();
    };
    if sa.below(&sb) || sb.below(&sa) {
        format!("{}x", r.show(1.0, 2))
    } else {
        format!("no difference ({}x)", r.show(1.0, 2))
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn spread_and_pairs() {
        let s = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.min, s.median, s.max), (1.0, 2.0, 3.0));
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(paired(&[4.0, 9.0], &[2.0, 3.0, 7.0]), vec![2.0, 3.0]);
        assert_eq!(s.show(1.0, 1), "1.0 / 2.0 / 3.0");
        assert_eq!(show(&[2e6, 1e6], 1e6, 0), "1 / 2 / 2");
        assert_eq!(show(&[], 1.0, 1), "-");
    }

    #[test]
    fn overlapping_ranges_are_no_difference() {
        assert_eq!(verdict(&[10.0, 12.0], &[1.0, 2.0]), "6.00 / 10.00 / 10.00x");
        assert!(verdict(&[1.0, 3.0], &[2.0, 4.0]).starts_with("no difference"));
        assert_eq!(verdict(&[], &[1.0]), "no figures");
    }
}
