//! A small log-linear latency histogram (microseconds): constant memory however long the soak runs,
//! percentiles within 1 % (128 sub-buckets per power of two), exact maximum.

/// Sub-buckets per power of two, as a bit count: values are kept to their top 8 significant bits.
const SUB_BITS: u32 = 7;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets needed to cover every u64 value.
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB as usize;

/// Counts of latencies in microseconds.
#[derive(Debug, Clone)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

/// The latency figures of one interval or of the whole run, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Percentiles {
    pub(crate) count: u64,
    pub(crate) p50: u64,
    pub(crate) p99: u64,
    pub(crate) max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

impl Histogram {
    /// Count one latency.
    pub(crate) fn record(&mut self, micros: u64) {
        self.counts[bucket_of(micros)] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
    }

    /// Add every count of `other` to this histogram.
    pub(crate) fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// p50, p99 and max; `None` when nothing was recorded.
    pub(crate) fn percentiles(&self) -> Option<Percentiles> {
        (self.total > 0).then(|| Percentiles {
            count: self.total,
            p50: self.quantile(0.50),
            p99: self.quantile(0.99),
            max: self.max,
        })
    }

    /// The smallest bucket value with at least `q` of all counts at or below it (never above max).
    fn quantile(&self, q: f64) -> u64 {
        let rank = ((q * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return lowest_value(index).min(self.max);
            }
        }
        self.max
    }
}

/// The bucket holding `value`: exact below 128, then 128 buckets per power of two.
fn bucket_of(value: u64) -> usize {
    if value < SUB {
        return value as usize;
    }
    let top_bit = 63 - value.leading_zeros();
    let shift = top_bit - SUB_BITS;
    ((u64::from(shift) + 1) * SUB + ((value >> shift) - SUB)) as usize
}

/// The smallest value that falls into bucket `index`.
fn lowest_value(index: usize) -> u64 {
    let index = index as u64;
    if index < SUB {
        return index;
    }
    let shift = index / SUB - 1;
    (index % SUB + SUB) << shift
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_round_trip_and_stay_within_one_percent() {
        for value in [0, 1, 127, 128, 255, 256, 1000, 12_345, 9_999_999, u64::MAX] {
            let low = lowest_value(bucket_of(value));
            assert!(low <= value, "{value}: {low}");
            assert!(
                (value - low) as f64 <= value as f64 * 0.01,
                "{value}: {low}"
            );
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_of_a_uniform_run() {
        let mut h = Histogram::default();
        for v in 1..=1000 {
            h.record(v);
        }
        let p = h.percentiles().unwrap();
        assert_eq!(p.count, 1000);
        assert!((495..=500).contains(&p.p50), "{p:?}");
        assert!((980..=990).contains(&p.p99), "{p:?}");
        assert_eq!(p.max, 1000);
    }

    #[test]
    fn merge_adds_counts_and_keeps_the_max() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(10);
        b.record(5000);
        a.merge(&b);
        assert_eq!(a.percentiles().unwrap().count, 2);
        assert_eq!(a.percentiles().unwrap().max, 5000);
        assert!(Histogram::default().percentiles().is_none());
    }
}
