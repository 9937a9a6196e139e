//! How model values are kept in `body` columns: their JSON with a format version in front
//! (`{"_format":1,…}`). The model's serde derives describe the API; a change to them changes what
//! is stored, so every stored kind has committed golden rows (`tests/fixtures/rows/`) that must
//! still decode and re-encode unchanged. A deliberate format change bumps [`Stored::FORMAT`],
//! commits the new golden row next to the old ones and teaches [`Stored::upgrade`] to read the
//! old format, so rows already on disk keep decoding.

use std::io::Write;

use evalmint_model::{CandidateLabel, EvalRun, SnapshotQuery, Step, ValidFeedback};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::convert::internal;
use crate::{Result, StoreError};

const FORMAT_KEY: &str = "_format";

/// A model type stored as a row body.
pub(crate) trait Stored: Serialize + DeserializeOwned {
    /// The golden rows' file stem.
    const KIND: &'static str;
    /// The format written today. Rows from before formats were numbered carry none: format 1.
    const FORMAT: u32 = 1;

    /// Rewrites a body of an older `format` (without its version key) into today's format.
    fn upgrade(format: u32, _body: serde_json::Value) -> Result<serde_json::Value> {
        Err(StoreError::Internal(format!(
            "{} rows of format {format} cannot be read (this build reads format {})",
            Self::KIND,
            Self::FORMAT
        )))
    }
}

impl Stored for Step {
    const KIND: &'static str = "step";
}

impl Stored for ValidFeedback {
    const KIND: &'static str = "feedback";
}

impl Stored for SnapshotQuery {
    const KIND: &'static str = "snapshot_query";
}

impl Stored for CandidateLabel {
    const KIND: &'static str = "candidate";
}

impl Stored for EvalRun {
    const KIND: &'static str = "eval_run";
    /// Format 2 names every result's label by its label id (`lbl-<trace id>`); format 1 named a
    /// run over the admitted set's labels by candidate id (`cand-<trace id>-v<n>`).
    const FORMAT: u32 = 2;

    fn upgrade(format: u32, mut body: serde_json::Value) -> Result<serde_json::Value> {
        if format != 1 {
            return Err(StoreError::Internal(format!(
                "eval_run rows of format {format} cannot be read (this build reads format 2)"
            )));
        }
        let results = body
            .get_mut("results")
            .and_then(serde_json::Value::as_array_mut)
            .into_iter()
            .flatten();
        for result in results {
            let Some(label) = result.get_mut("label_id") else {
                continue;
            };
            if let Some(renamed) = label.as_str().and_then(label_of_candidate) {
                *label = serde_json::Value::String(renamed);
            }
        }
        Ok(body)
    }
}

/// The label id of candidate id `cand-<trace id>-v<n>`, or None for anything else.
pub(crate) fn label_of_candidate(candidate_id: &str) -> Option<String> {
    let rest = candidate_id.strip_prefix("cand-")?;
    let (trace, _version) = rest.rsplit_once("-v")?;
    let trace: evalmint_model::TraceId = trace.parse().ok()?;
    Some(evalmint_model::label_id(trace))
}

impl Stored for evalmint_model::LabelVersion {
    const KIND: &'static str = "label_version";
}

impl Stored for evalmint_model::release::Release {
    const KIND: &'static str = "release";
    /// Format 2 adds the production investigations of the period to the coverage.
    const FORMAT: u32 = 2;

    /// A format 1 release counted only investigations with feedback: it reads with no
    /// production count, as it was made.
    fn upgrade(_format: u32, body: serde_json::Value) -> Result<serde_json::Value> {
        Ok(body)
    }
}

pub(crate) fn encode<T: Stored>(value: &T) -> Result<String> {
    // One buffer: the format key, then the value's own object with its `{` overwritten, so a
    // row body is written once and never copied (this runs for every span ingested).
    let mut buffer = Vec::with_capacity(1024);
    write!(buffer, "{{\"{FORMAT_KEY}\":{}", T::FORMAT).map_err(internal)?;
    let object_start = buffer.len();
    serde_json::to_writer(&mut buffer, value).map_err(internal)?;
    if buffer.get(object_start) != Some(&b'{') {
        return Err(StoreError::Internal(format!(
            "{} does not encode as an object",
            T::KIND
        )));
    }
    if buffer[object_start..] == *b"{}" {
        buffer.truncate(object_start);
        buffer.push(b'}');
    } else {
        buffer[object_start] = b',';
    }
    String::from_utf8(buffer).map_err(internal)
}

pub(crate) fn decode<T: Stored>(body: &str) -> Result<T> {
    // Today's rows, as written by `encode`, parse directly (the version key is ignored).
    let current = format!("{{\"{FORMAT_KEY}\":{},", T::FORMAT);
    if body.starts_with(&current) {
        return serde_json::from_str(body).map_err(|e| undecodable::<T>(e));
    }
    let mut value: serde_json::Value = serde_json::from_str(body).map_err(undecodable::<T>)?;
    let format = match value
        .as_object_mut()
        .and_then(|object| object.remove(FORMAT_KEY))
    {
        None => 1,
        Some(version) => version
            .as_u64()
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| {
                StoreError::Internal(format!("{} row: bad format {version}", T::KIND))
            })?,
    };
    if format != T::FORMAT {
        value = T::upgrade(format, value)?;
    }
    serde_json::from_value(value).map_err(undecodable::<T>)
}

fn undecodable<T: Stored>(e: serde_json::Error) -> StoreError {
    StoreError::Internal(format!("a stored {} row does not decode: {e}", T::KIND))
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;
    use std::path::PathBuf;

    use super::*;

    fn fixture(kind: &str, format: u32) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/rows")
            .join(format!("{kind}.v{format}.json"))
    }

    /// Every committed format of `T` decodes, and re-encodes to exactly today's golden row:
    /// a model change that alters the stored format shows up here as a diff.
    fn check<T: Stored + PartialEq + Debug>() {
        let current = fixture(T::KIND, T::FORMAT);
        for format in 1..=T::FORMAT {
            let path = fixture(T::KIND, format);
            let Ok(text) = std::fs::read_to_string(&path) else {
                // Only a format that went out in a release needs a golden row.
                assert_ne!(format, T::FORMAT, "{} has no golden row", path.display());
                continue;
            };
            let decoded: T = decode(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let encoded = encode(&decoded).unwrap();
            assert_eq!(decode::<T>(&encoded).unwrap(), decoded, "round trip");
            let pretty: serde_json::Value = serde_json::from_str(&encoded).unwrap();
            expect_test::expect_file![current.clone()]
                .assert_eq(&(serde_json::to_string_pretty(&pretty).unwrap() + "\n"));
        }
    }

    #[test]
    fn steps_keep_their_stored_format() {
        check::<Step>();
    }

    #[test]
    fn feedback_keeps_its_stored_format() {
        check::<ValidFeedback>();
    }

    #[test]
    fn snapshot_queries_keep_their_stored_format() {
        check::<SnapshotQuery>();
    }

    #[test]
    fn eval_runs_keep_their_stored_format() {
        check::<EvalRun>();
    }

    #[test]
    fn format_one_runs_over_the_admitted_set_name_their_labels_by_label_id() {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let text = std::fs::read_to_string(fixture(EvalRun::KIND, 1))
            .unwrap()
            .replace("\"cand-0101\"", &format!("\"cand-{trace}-v3\""));
        let run: EvalRun = decode(&text).unwrap();
        assert_eq!(run.results[0].label_id, format!("lbl-{trace}"));
        assert_eq!(run.results[0].label_version, 2, "the version is kept");
        assert_eq!(run.baseline, None);
        // Ids that are not candidate ids stay as they were.
        assert_eq!(label_of_candidate("cand-0101"), None);
        assert_eq!(label_of_candidate(&format!("lbl-{trace}")), None);
    }

    #[test]
    fn candidates_keep_their_stored_format() {
        check::<CandidateLabel>();
    }

    #[test]
    fn label_versions_keep_their_stored_format() {
        check::<evalmint_model::LabelVersion>();
    }

    #[test]
    fn releases_keep_their_stored_format() {
        check::<evalmint_model::release::Release>();
    }

    #[test]
    fn rows_from_before_formats_were_numbered_decode_as_format_one() {
        let text = std::fs::read_to_string(fixture("feedback", 1)).unwrap();
        let mut unversioned: serde_json::Value = serde_json::from_str(&text).unwrap();
        unversioned.as_object_mut().unwrap().remove(FORMAT_KEY);
        let old: ValidFeedback = decode(&unversioned.to_string()).unwrap();
        assert_eq!(old, decode::<ValidFeedback>(&text).unwrap());
    }

    #[test]
    fn unknown_formats_and_broken_rows_are_errors_not_panics() {
        let text = std::fs::read_to_string(fixture("feedback", 1)).unwrap();
        let future = text.replacen("\"_format\": 1", "\"_format\": 99", 1);
        assert_ne!(future, text);
        let error = decode::<ValidFeedback>(&future).unwrap_err().to_string();
        assert!(error.contains("format 99"), "{error}");
        for broken in ["", "[]", "{\"_format\":\"one\"}", "{\"_format\":1,"] {
            assert!(decode::<ValidFeedback>(broken).is_err(), "{broken:?}");
        }
    }
}
