//! What an API key may do. Scopes are checked by the server; the tenant a key belongs to confines
//! every read and write.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One permission an API key can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Send traces and native investigations.
    Ingest,
    /// Send feedback only; publishable, safe to embed in a browser.
    Feedback,
    /// Read investigations, feedback and labels; decide reviews.
    Review,
    /// Scrape `/metrics` when the server requires a key for it.
    Metrics,
    /// Everything, including creating keys.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::Ingest,
        Scope::Feedback,
        Scope::Review,
        Scope::Metrics,
        Scope::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Feedback => "feedback",
            Scope::Review => "review",
            Scope::Metrics => "metrics",
            Scope::Admin => "admin",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| {
                format!("unknown scope {s:?}: expected ingest, feedback, review, metrics or admin")
            })
    }
}

/// Fewest characters an operator-chosen key may have.
pub const MIN_SECRET_LEN: usize = 24;
/// Fewest distinct characters an operator-chosen key may have: rules out `aaaa…` and `abab…`.
const MIN_DISTINCT_CHARS: usize = 8;

/// Checks a key the operator chose (rather than one evalmint generated): long enough, not a
/// repeated pattern, and only visible ASCII so it survives an HTTP header.
pub fn check_chosen_secret(secret: &str) -> Result<(), String> {
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("the key may contain only visible ASCII characters, no spaces".to_owned());
    }
    if secret.len() < MIN_SECRET_LEN {
        return Err(format!(
            "the key has {} characters; at least {MIN_SECRET_LEN} are required \
             (e.g. `openssl rand -hex 24`)",
            secret.len()
        ));
    }
    let distinct = secret
        .bytes()
        .collect::<std::collections::HashSet<_>>()
        .len();
    if distinct < MIN_DISTINCT_CHARS {
        return Err(format!(
            "the key uses only {distinct} distinct characters; at least {MIN_DISTINCT_CHARS} \
             are required (e.g. `openssl rand -hex 24`)"
        ));
    }
    Ok(())
}

/// The scopes of one key. `admin` permits everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ScopeSet(u8);

impl ScopeSet {
    pub fn with(self, scope: Scope) -> Self {
        ScopeSet(self.0 | scope.bit())
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    pub fn permits(self, needed: Scope) -> bool {
        self.contains(needed) || self.contains(Scope::Admin)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }

    /// Comma-separated names, the form stored and shown.
    pub fn to_list(self) -> String {
        self.iter().map(Scope::as_str).collect::<Vec<_>>().join(",")
    }

    pub fn parse_list(list: &str) -> Result<Self, String> {
        let set = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .try_fold(ScopeSet::default(), |set, s| {
                s.parse().map(|scope| set.with(scope))
            })?;
        if set.is_empty() {
            return Err("at least one scope is required".to_owned());
        }
        Ok(set)
    }
}

impl FromIterator<Scope> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        iter.into_iter().fold(ScopeSet::default(), ScopeSet::with)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_secrets_must_be_long_and_varied() {
        assert!(check_chosen_secret("3f9a1c07d2b84e6f0a5c9d13e7b2f468").is_ok());
        assert!(
            check_chosen_secret("x")
                .unwrap_err()
                .contains("at least 24")
        );
        assert!(
            check_chosen_secret(&"a".repeat(40))
                .unwrap_err()
                .contains("distinct")
        );
        assert!(
            check_chosen_secret(&"ab12".repeat(10))
                .unwrap_err()
                .contains("distinct")
        );
        assert!(check_chosen_secret("3f9a1c07 d2b84e6f0a5c9d13e7b2f468").is_err());
        assert!(check_chosen_secret("3f9a1c07d2b84e6f0a5c9d13e7b2f46é").is_err());
    }

    #[test]
    fn admin_permits_everything_and_others_only_themselves() {
        let admin = ScopeSet::parse_list("admin").unwrap();
        assert!(Scope::ALL.iter().all(|s| admin.permits(*s)));
        let feedback = ScopeSet::parse_list("feedback").unwrap();
        assert!(feedback.permits(Scope::Feedback));
        assert!(!feedback.permits(Scope::Ingest));
        assert!(!feedback.permits(Scope::Review));
    }

    #[test]
    fn scope_lists_round_trip_and_reject_unknown_names() {
        let set = ScopeSet::parse_list("review, ingest").unwrap();
        assert_eq!(set.to_list(), "ingest,review");
        assert!(ScopeSet::parse_list("ingest,root").is_err());
        assert!(ScopeSet::parse_list("").is_err());
    }
}
