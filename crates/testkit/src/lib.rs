//! What tests across the workspace share: the one way a test skips because something it needs is
//! missing (and the switch that turns such a skip into a failure), an S3-compatible server for
//! the blob store's tests, and the checks behind the workspace's `tidy` test.

pub mod moto;
pub mod tidy;

/// The environment variable that turns every skip into a failure. `.ci/run` sets it to `1`, so a
/// missing dependency there fails the build instead of reading as a pass.
pub const REQUIRE_ALL: &str = "EVALMINT_REQUIRE_ALL";

/// Skips the calling test because `missing` is not available, or fails it when
/// `EVALMINT_REQUIRE_ALL` is set to anything but `0` or the empty string. Call it as
/// `return evalmint_testkit::skip("…")`.
#[track_caller]
pub fn skip(missing: &str) {
    skip_unless_required(missing, std::env::var(REQUIRE_ALL).ok().as_deref());
}

#[track_caller]
fn skip_unless_required(missing: &str, require_all: Option<&str>) {
    let required = require_all.is_some_and(|value| !matches!(value.trim(), "" | "0"));
    assert!(
        !required,
        "cannot skip with {REQUIRE_ALL}={}: {missing}",
        require_all.unwrap_or_default()
    );
    // The test harness shows this with `--nocapture` or when the test fails; the skip itself
    // passes, which is why CI sets `EVALMINT_REQUIRE_ALL=1`.
    eprintln!("skipping: {missing}");
}

#[cfg(test)]
mod tests {
    use super::skip_unless_required;

    #[test]
    fn a_skip_passes_unless_everything_is_required() {
        skip_unless_required("prometheus is not installed", None);
        skip_unless_required("prometheus is not installed", Some(""));
        skip_unless_required("prometheus is not installed", Some("0"));
    }

    #[test]
    #[should_panic(
        expected = "cannot skip with EVALMINT_REQUIRE_ALL=1: prometheus is not installed"
    )]
    fn a_skip_fails_when_everything_is_required() {
        skip_unless_required("prometheus is not installed", Some("1"));
    }
}
