//! The rules both backends apply the same way to the erasure audit: the installation secret that
//! keys it, the keyed hashes by which it names users and remembers erased idempotency keys, and
//! how an erasure's subject is stored in two columns. Only the reads and writes differ per backend.

use evalmint_model::FeedbackId;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::convert::internal;
use crate::{ErasureSubject, Result, StoreError};

/// The name of the installation secret that keys erasure digests.
pub(crate) const ERASURE_SECRET: &str = "erasure";

/// Which feedback an erasure removes.
pub(crate) enum Selection<'a> {
    /// Every feedback of one user.
    User(&'a str),
    /// One feedback.
    Feedback(FeedbackId),
}

/// A fresh installation secret: 32 random bytes.
pub(crate) fn new_secret() -> Result<Vec<u8>> {
    let mut secret = vec![0u8; 32];
    getrandom::fill(&mut secret).map_err(internal)?;
    Ok(secret)
}

/// HMAC-SHA256 (hex) under `secret` of the SHA-256 of `text`. Keying the SHA-256 rather than the
/// text lets audit rows that held only the SHA-256 be keyed in place.
pub(crate) fn keyed_sha256(secret: &[u8], sha256: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(sha256);
    hex::encode(mac.finalize().into_bytes())
}

/// How the audit names `text` (a user id or an idempotency key) under `secret`.
pub(crate) fn keyed(secret: &[u8], text: &str) -> String {
    keyed_sha256(secret, &Sha256::digest(text.as_bytes()))
}

/// The refusal of an idempotency key found among the erased ones.
pub(crate) fn refuse_if_erased(erased: bool, key: &str) -> Result<()> {
    if erased {
        return Err(StoreError::Erased(key.to_owned()));
    }
    Ok(())
}

/// The `subject` and `subject_id` columns of an erasure.
pub(crate) fn subject_columns(subject: &ErasureSubject) -> (&'static str, String) {
    match subject {
        ErasureSubject::User { user_id_hmac } => ("user", user_id_hmac.clone()),
        ErasureSubject::Feedback { feedback_id } => ("feedback", feedback_id.to_string()),
    }
}

/// An erasure's subject read back from its columns.
pub(crate) fn subject_from_columns(subject: &str, subject_id: String) -> Result<ErasureSubject> {
    match subject {
        "feedback" => Ok(ErasureSubject::Feedback {
            feedback_id: subject_id.parse().map_err(internal)?,
        }),
        _ => Ok(ErasureSubject::User {
            user_id_hmac: subject_id,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keyed_hash_depends_on_the_secret() {
        assert_eq!(keyed(b"one", "u-1"), keyed(b"one", "u-1"));
        assert_ne!(keyed(b"one", "u-1"), keyed(b"two", "u-1"));
        assert_ne!(keyed(b"one", "u-1"), keyed(b"one", "u-2"));
        assert_ne!(keyed(b"one", "u-1"), hex::encode(Sha256::digest(b"u-1")));
    }

    #[test]
    fn a_subject_survives_its_columns() {
        let feedback = ErasureSubject::Feedback {
            feedback_id: evalmint_model::FeedbackId::from_uuid(uuid::Uuid::now_v7()),
        };
        let user = ErasureSubject::User {
            user_id_hmac: keyed(b"one", "u-1"),
        };
        for subject in [feedback, user] {
            let (name, id) = subject_columns(&subject);
            assert_eq!(subject_from_columns(name, id).unwrap(), subject);
        }
    }
}
