//! Submission rate limits: a token bucket per tenant and one across all tenants (GCRA, via
//! `governor`). The tenant bucket is checked first so that a flooding tenant is refused
//! without spending the global budget its neighbours need.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::domain::ids::TenantId;

/// Which limit refused a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitScope {
    /// The tenant's own rate.
    Tenant,
    /// The appliance-wide rate.
    Global,
}

impl LimitScope {
    /// The label used in metrics and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitScope::Tenant => "tenant",
            LimitScope::Global => "global",
        }
    }
}

/// A refused submission and when to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejection {
    /// Which limit.
    pub scope: LimitScope,
    /// Earliest time a retry can succeed.
    pub retry_after: Duration,
}

/// Token buckets for submissions.
pub struct Limiter {
    global: DefaultDirectRateLimiter,
    tenants: HashMap<TenantId, DefaultDirectRateLimiter>,
    clock: DefaultClock,
}

fn quota(rate: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(rate.max(1)).expect("non-zero");
    let burst = NonZeroU32::new(burst.max(rate.get())).expect("non-zero");
    Quota::per_second(rate).allow_burst(burst)
}

impl Limiter {
    /// A limiter with a global rate and one (rate, burst) per tenant.
    pub fn new(
        global: (u32, u32),
        tenants: impl IntoIterator<Item = (TenantId, (u32, u32))>,
    ) -> Self {
        Limiter {
            global: RateLimiter::direct(quota(global.0, global.1)),
            tenants: tenants
                .into_iter()
                .map(|(t, (r, b))| (t, RateLimiter::direct(quota(r, b))))
                .collect(),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one token for `tenant`, or says which limit refused and when to retry.
    pub fn check(&self, tenant: &TenantId) -> Result<(), Rejection> {
        if let Some(bucket) = self.tenants.get(tenant)
            && let Err(not_until) = bucket.check()
        {
            return Err(Rejection {
                scope: LimitScope::Tenant,
                retry_after: not_until.wait_time_from(self.clock.now()),
            });
        }
        self.global.check().map_err(|not_until| Rejection {
            scope: LimitScope::Global,
            retry_after: not_until.wait_time_from(self.clock.now()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_over_its_burst_is_refused_with_a_retry_time() {
        let acme = TenantId::new("acme").unwrap();
        let globex = TenantId::new("globex").unwrap();
        let l = Limiter::new(
            (1000, 1000),
            [(acme.clone(), (1, 3)), (globex.clone(), (1, 3))],
        );
        for _ in 0..3 {
            l.check(&acme).unwrap();
        }
        let r = l.check(&acme).unwrap_err();
        assert_eq!(r.scope, LimitScope::Tenant);
        assert!(r.retry_after > Duration::ZERO && r.retry_after <= Duration::from_secs(1));
        // The neighbour is unaffected.
        l.check(&globex).unwrap();
    }

    #[test]
    fn the_global_limit_applies_across_tenants() {
        let a = TenantId::new("a").unwrap();
        let b = TenantId::new("b").unwrap();
        let l = Limiter::new((1, 2), [(a.clone(), (100, 100)), (b.clone(), (100, 100))]);
        l.check(&a).unwrap();
        l.check(&b).unwrap();
        assert_eq!(l.check(&a).unwrap_err().scope, LimitScope::Global);
    }
}
