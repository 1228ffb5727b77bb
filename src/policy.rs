//! The decision: a pure function from findings and the operator's options to a verdict.
//!
//! Scanners and verifiers establish facts (findings); only this module turns them into
//! accept / warn / reject. It reads nothing, prints nothing, and knows no format: a finding's
//! severity is what counts. Anything at `error` or above rejects; a warning rejects only when
//! the operator asked for [`WarningPolicy::Deny`] (`--strict`).

use serde::Serialize;

use crate::finding::{Finding, Severity};

/// The outcome for one artifact (or a whole run).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Checked; nothing worth saying.
    Accept,
    /// Checked; accepted, with warnings the operator should read.
    Warn,
    /// Checked and refused.
    Reject,
    /// Could not be checked (I/O or operational error), so it cannot be vouched for.
    Error,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Accept => "accept",
            Verdict::Warn => "warn",
            Verdict::Reject => "reject",
            Verdict::Error => "error",
        }
    }
}

/// What warnings (such as `unknown-format`) do to the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WarningPolicy {
    /// Warnings are reported and the artifact is still accepted.
    #[default]
    Allow,
    /// Warnings reject, as `--strict` asks.
    Deny,
}

/// The operator's choices that bear on the verdict.
#[derive(Debug, Clone, Copy, Default)]
pub struct PolicyOptions {
    pub warnings: WarningPolicy,
}

/// Decides the verdict for one artifact from its findings.
pub fn decide(findings: &[Finding], options: &PolicyOptions) -> Verdict {
    let worst = findings.iter().map(|finding| finding.severity).max();
    match (worst, options.warnings) {
        (None | Some(Severity::Info), _) => Verdict::Accept,
        (Some(Severity::Warning), WarningPolicy::Allow) => Verdict::Warn,
        (Some(Severity::Warning), WarningPolicy::Deny) => Verdict::Reject,
        (Some(Severity::Error | Severity::Critical), _) => Verdict::Reject,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Code;

    #[test]
    fn severities_map_to_verdicts() {
        let standard = PolicyOptions::default();
        let strict = PolicyOptions {
            warnings: WarningPolicy::Deny,
        };
        let info = Finding::new(Code::ExtensionMismatch, "x");
        let warning = Finding::new(Code::UnknownFormat, "x");
        let critical = Finding::new(Code::PickleDangerousGlobal, "x");
        assert_eq!(decide(&[], &standard), Verdict::Accept);
        assert_eq!(
            decide(std::slice::from_ref(&info), &strict),
            Verdict::Accept
        );
        assert_eq!(decide(&[info, warning.clone()], &standard), Verdict::Warn);
        assert_eq!(
            decide(std::slice::from_ref(&warning), &strict),
            Verdict::Reject
        );
        assert_eq!(decide(&[warning, critical], &standard), Verdict::Reject);
    }
}
