//! Any bytes posted to `/api/v1/feedback`: deserializing and validating must return either valid
//! feedback or field errors, never panic.

#![no_main]

use evalmint_model::{FeedbackOrigin, FeedbackSubmission};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(submission) = serde_json::from_slice::<FeedbackSubmission>(body) {
        let _ = submission.validate(FeedbackOrigin::Api);
    }
});
