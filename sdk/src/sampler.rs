//! Head sampling: which new traces are recorded and exported.

use crate::id::{SpanContext, TraceId};

/// Decides at span start whether a span is recorded and exported. The decision is carried
/// downstream in the sampled trace flag.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Sampler {
    /// Record every span.
    AlwaysOn,
    /// Record nothing (context still propagates, marked not sampled).
    AlwaysOff,
    /// Record a fraction (0.0..=1.0) of traces, decided from the trace id so that every
    /// service using the same ratio makes the same decision for the same trace.
    TraceIdRatio(f64),
    /// Follow the parent's sampled flag when there is a parent; use the inner sampler for
    /// root spans. The default is `ParentBased(AlwaysOn)`.
    ParentBased(Box<Sampler>),
}

impl Default for Sampler {
    fn default() -> Sampler {
        Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
    }
}

impl Sampler {
    /// Parent-based with a trace-id ratio for roots: the usual production choice.
    pub fn parent_based_ratio(ratio: f64) -> Sampler {
        Sampler::ParentBased(Box::new(Sampler::TraceIdRatio(ratio)))
    }

    /// From `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` values (`always_on`,
    /// `always_off`, `traceidratio`, `parentbased_always_on`, `parentbased_always_off`,
    /// `parentbased_traceidratio`). Unknown names give `None`.
    pub fn from_otel_name(name: &str, arg: Option<&str>) -> Option<Sampler> {
        let ratio = || arg.and_then(|a| a.trim().parse::<f64>().ok()).unwrap_or(1.0);
        Some(match name.trim() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::TraceIdRatio(ratio()),
            "parentbased_always_on" => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            "parentbased_always_off" => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            "parentbased_traceidratio" => Sampler::parent_based_ratio(ratio()),
            _ => return None,
        })
    }

    /// Whether a span with this parent (if any) in this trace should be sampled.
    #[inline]
    pub fn should_sample(&self, parent: Option<&SpanContext>, trace_id: TraceId) -> bool {
        match self {
            Sampler::AlwaysOn => true,
            // The default, decided without a call.
            Sampler::ParentBased(root) if matches!(**root, Sampler::AlwaysOn) => match parent {
                Some(p) if p.is_valid() => p.is_sampled(),
                _ => true,
            },
            _ => self.decide(parent, trace_id),
        }
    }

    /// [`Sampler::should_sample`] for a span with a valid parent, given the parent's
    /// sampled flag.
    #[inline]
    pub(crate) fn sample_child(&self, parent_sampled: bool, trace_id: TraceId) -> bool {
        match self {
            Sampler::AlwaysOn => true,
            Sampler::AlwaysOff => false,
            Sampler::TraceIdRatio(ratio) => ratio_sampled(*ratio, trace_id),
            Sampler::ParentBased(_) => parent_sampled,
        }
    }

    fn decide(&self, parent: Option<&SpanContext>, trace_id: TraceId) -> bool {
        match self {
            Sampler::AlwaysOn => true,
            Sampler::AlwaysOff => false,
            Sampler::TraceIdRatio(ratio) => ratio_sampled(*ratio, trace_id),
            Sampler::ParentBased(root) => match parent {
                Some(p) if p.is_valid() => p.is_sampled(),
                _ => root.should_sample(None, trace_id),
            },
        }
    }
}

/// The OpenTelemetry algorithm: the low 63 bits of the trace id's last 8 bytes against
/// `ratio * 2^63`.
fn ratio_sampled(ratio: f64, trace_id: TraceId) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio.is_nan() || ratio <= 0.0 {
        return false;
    }
    let mut low = [0u8; 8];
    low.copy_from_slice(&trace_id.0[8..]);
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    (u64::from_be_bytes(low) >> 1) < bound
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::id::{SpanId, TraceFlags};

    #[test]
    fn ratio_is_roughly_right() {
        let sampler = Sampler::TraceIdRatio(0.25);
        let hits = (0..20_000)
            .filter(|_| sampler.should_sample(None, TraceId::random()))
            .count();
        assert!((4_000..6_000).contains(&hits), "{hits}");
    }

    #[test]
    fn parent_based_follows_parent() {
        let sampler = Sampler::parent_based_ratio(0.0);
        let parent = SpanContext::new(TraceId::random(), SpanId::random(), TraceFlags::SAMPLED);
        assert!(sampler.should_sample(Some(&parent), parent.trace_id));
        let unsampled = SpanContext {
            trace_flags: TraceFlags::NOT_SAMPLED,
            ..parent.clone()
        };
        assert!(!Sampler::default().should_sample(Some(&unsampled), parent.trace_id));
        assert!(!sampler.should_sample(None, TraceId::random()));
    }

    #[test]
    fn otel_names() {
        assert_eq!(
            Sampler::from_otel_name("parentbased_traceidratio", Some("0.5")),
            Some(Sampler::parent_based_ratio(0.5))
        );
        assert_eq!(Sampler::from_otel_name("nope", None), None);
    }
}
