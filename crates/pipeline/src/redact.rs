//! Redaction of secrets and personal data before anything enters a label or leaves the process.
//!
//! User corrections, tool results and agent conclusions are free text that routinely carries
//! credentials (a connection string pasted into a correction, a token echoed by a tool) and
//! personal data (an on-call engineer's phone number). Every such value is replaced by a
//! placeholder naming its kind, such as `[redacted:email]`, before the text is stored in a label or
//! sent anywhere.
//!
//! Detection is pattern based. Each detector is a regex compiled once plus a check for what a
//! regex cannot express (octet ranges, the Luhn checksum, card issuer prefixes, token boundaries).
//! Candidates that overlap are resolved so each byte is replaced at most once: overlapping
//! candidates of one kind merge, otherwise the longest wins and ties go to the more specific kind. Placeholders already in the text are left
//! alone, and redaction repeats on its own output until nothing more is found, so redacting twice
//! changes nothing. The detectors are tuned so that ordinary SRE text stays readable: service and
//! pod names, UUIDs, trace ids, digests, timestamps, durations, versions and PromQL are not
//! touched.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;
use std::ops::Range;
use std::sync::LazyLock;

use regex::{Captures, Regex};
use serde_json::Value;

/// What kind of sensitive value was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensitiveKind {
    Email,
    IpAddress,
    PhoneNumber,
    CardNumber,
    BearerToken,
    CloudKey,
    Jwt,
    PrivateKey,
    UrlCredentials,
    ApiSecret,
}

impl SensitiveKind {
    /// The name used inside placeholders; the same as the serde name.
    fn label(self) -> &'static str {
        match self {
            SensitiveKind::Email => "email",
            SensitiveKind::IpAddress => "ip_address",
            SensitiveKind::PhoneNumber => "phone_number",
            SensitiveKind::CardNumber => "card_number",
            SensitiveKind::BearerToken => "bearer_token",
            SensitiveKind::CloudKey => "cloud_key",
            SensitiveKind::Jwt => "jwt",
            SensitiveKind::PrivateKey => "private_key",
            SensitiveKind::UrlCredentials => "url_credentials",
            SensitiveKind::ApiSecret => "api_secret",
        }
    }

    /// Breaks ties between candidates of equal length: the higher, more specific kind wins, so a
    /// JWT sent as a bearer token is reported as a JWT.
    fn specificity(self) -> u8 {
        match self {
            SensitiveKind::PrivateKey => 10,
            SensitiveKind::Jwt => 9,
            SensitiveKind::CloudKey => 8,
            SensitiveKind::UrlCredentials => 7,
            SensitiveKind::BearerToken => 6,
            SensitiveKind::CardNumber => 5,
            SensitiveKind::ApiSecret => 4,
            SensitiveKind::Email => 3,
            SensitiveKind::PhoneNumber => 2,
            SensitiveKind::IpAddress => 1,
        }
    }
}

/// One sensitive value, as byte offsets into the original text.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub kind: SensitiveKind,
    pub start: usize,
    pub end: usize,
}

impl Finding {
    fn len(&self) -> usize {
        self.end - self.start
    }
}

/// Text with every sensitive value replaced, and where those values were in the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted {
    pub text: String,
    /// Sorted by `start`, never overlapping.
    pub findings: Vec<Finding>,
}

/// Replaces every sensitive value with a placeholder such as `[redacted:email]`.
pub fn redact(text: &str) -> Redacted {
    let mut findings: Vec<Finding> = Vec::new();
    let mut rendered = Rendered {
        text: text.to_owned(),
        placeholder_ends: Vec::new(),
    };
    for _ in 0..MAX_PASSES {
        let new_findings = detect(&rendered.text);
        if new_findings.is_empty() {
            break;
        }
        findings.extend(new_findings.into_iter().map(|finding| Finding {
            kind: finding.kind,
            start: rendered.original_offset(finding.start),
            end: rendered.original_offset(finding.end),
        }));
        findings.sort_by_key(|finding| finding.start);
        rendered = render(text, &findings);
    }
    Redacted {
        text: rendered.text,
        findings,
    }
}

/// How many times [`redact`] looks again at its own output. A value can be rejected only because
/// of what stood next to it (a phone number glued to an email address); once its neighbour is a
/// placeholder the next pass accepts it, so redaction repeats until the output holds nothing a
/// detector accepts. Every pass sees only text no earlier pass replaced, and realistic text settles
/// in two; the cap guards against contrived input.
const MAX_PASSES: usize = 8;

/// The findings of one pass over `text`, with overlaps resolved and placeholders already in the
/// text left alone.
fn detect(text: &str) -> Vec<Finding> {
    let mut candidates = Vec::new();
    for detector in DETECTORS.iter() {
        for captures in detector.pattern.captures_iter(text) {
            if let Some(span) = (detector.locate)(text, &captures)
                && !span.is_empty()
            {
                candidates.push(Finding {
                    kind: detector.kind,
                    start: span.start,
                    end: span.end,
                });
            }
        }
    }
    let placeholders = PLACEHOLDER.find_iter(text).map(|m| m.range());
    resolve_overlaps(candidates, placeholders)
}

/// The original text with findings replaced, and how to map its offsets back to the original.
struct Rendered {
    text: String,
    /// For each placeholder in order: its end in `text` and the end of the value it replaced.
    placeholder_ends: Vec<(usize, usize)>,
}

impl Rendered {
    /// Maps an offset in `text` that is not inside a placeholder to the original text.
    fn original_offset(&self, rendered_offset: usize) -> usize {
        let preceding = self
            .placeholder_ends
            .partition_point(|&(rendered_end, _)| rendered_end <= rendered_offset);
        match preceding.checked_sub(1) {
            None => rendered_offset,
            Some(last) => {
                let (rendered_end, original_end) = self.placeholder_ends[last];
                original_end + (rendered_offset - rendered_end)
            }
        }
    }
}

fn render(original: &str, findings: &[Finding]) -> Rendered {
    let mut text = String::with_capacity(original.len());
    let mut placeholder_ends = Vec::with_capacity(findings.len());
    let mut copied_up_to = 0;
    for finding in findings {
        debug_assert!(finding.start >= copied_up_to, "findings overlap");
        text.push_str(&original[copied_up_to..finding.start]);
        text.push_str(&placeholder(finding.kind));
        placeholder_ends.push((text.len(), finding.end));
        copied_up_to = finding.end;
    }
    text.push_str(&original[copied_up_to..]);
    Rendered {
        text,
        placeholder_ends,
    }
}

/// Redacts every string inside a JSON value (keys kept, values redacted), returning the count of
/// findings.
///
/// A string stored under a key that names a secret (`password`, `client_secret`, `api_key`,
/// `token`, `Authorization`, `Cookie`, …) is replaced whole, since what makes it a secret is the
/// key and not the text around it.
pub fn redact_json(value: &mut Value) -> usize {
    match value {
        Value::String(text) => redact_string_in_place(text),
        Value::Array(items) => items.iter_mut().map(redact_json).sum(),
        Value::Object(entries) => entries
            .iter_mut()
            .map(|(key, entry)| match (entry, secret_kind_of_json_key(key)) {
                (Value::String(text), Some(kind)) => redact_secret_value_in_place(text, kind),
                (other, _) => redact_json(other),
            })
            .sum(),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

/// What a string stored under `key` is, when the key alone says it is a secret.
fn secret_kind_of_json_key(key: &str) -> Option<SensitiveKind> {
    if !SECRET_JSON_KEY.is_match(key) {
        return None;
    }
    let is_authorization_header = key.to_ascii_lowercase().ends_with("authorization");
    Some(if is_authorization_header {
        SensitiveKind::BearerToken
    } else {
        SensitiveKind::ApiSecret
    })
}

fn redact_string_in_place(text: &mut String) -> usize {
    let redacted = redact(text);
    if !redacted.findings.is_empty() {
        *text = redacted.text;
    }
    redacted.findings.len()
}

/// Redacts a value whose key says it is a secret of `kind`: keeps a more specific placeholder
/// when the whole value is one detected value, otherwise replaces the whole string.
fn redact_secret_value_in_place(text: &mut String, kind: SensitiveKind) -> usize {
    let trimmed = text.trim();
    let is_one_placeholder = PLACEHOLDER
        .find(trimmed)
        .is_some_and(|found| found.range() == (0..trimmed.len()));
    if is_one_placeholder || is_placeholder_value(trimmed) {
        return redact_string_in_place(text);
    }
    let redacted = redact(trimmed);
    let whole_value_is_one_finding = matches!(
        redacted.findings.as_slice(),
        [only] if only.start == 0 && only.end == trimmed.len()
    );
    *text = if whole_value_is_one_finding {
        redacted.text
    } else {
        placeholder(kind)
    };
    1
}

fn placeholder(kind: SensitiveKind) -> String {
    format!("[redacted:{}]", kind.label())
}

/// Keeps the candidates that will be replaced. Overlapping candidates of one kind describe one
/// value seen two ways (a phone number running into another) and become their union, so no part
/// of either stays in the clear. Then, longest first, most specific next, leftmost last, each is
/// kept only if it overlaps neither an already kept candidate nor a placeholder that was in the
/// text before. Returns them sorted by start.
fn resolve_overlaps(
    candidates: Vec<Finding>,
    existing_placeholders: impl Iterator<Item = Range<usize>>,
) -> Vec<Finding> {
    let mut candidates = merge_overlaps_of_the_same_kind(candidates);
    candidates.sort_by(|a, b| {
        b.len()
            .cmp(&a.len())
            .then(b.kind.specificity().cmp(&a.kind.specificity()))
            .then(a.start.cmp(&b.start))
    });
    // Disjoint taken ranges, start → end. The range with the greatest start below a candidate's
    // end is the only one that can overlap it.
    let mut taken: BTreeMap<usize, usize> =
        existing_placeholders.map(|r| (r.start, r.end)).collect();
    let mut kept = Vec::new();
    for candidate in candidates {
        let overlaps = taken
            .range(..candidate.end)
            .next_back()
            .is_some_and(|(_, &end)| end > candidate.start);
        if !overlaps {
            taken.insert(candidate.start, candidate.end);
            kept.push(candidate);
        }
    }
    kept.sort_by_key(|finding| finding.start);
    kept
}

fn merge_overlaps_of_the_same_kind(mut candidates: Vec<Finding>) -> Vec<Finding> {
    candidates.sort_by_key(|candidate| (candidate.kind.specificity(), candidate.start));
    let mut merged: Vec<Finding> = Vec::with_capacity(candidates.len());
    for candidate in candidates {
        match merged.last_mut() {
            Some(last) if last.kind == candidate.kind && candidate.start < last.end => {
                last.end = last.end.max(candidate.end);
            }
            _ => merged.push(candidate),
        }
    }
    merged
}

/// A regex that proposes candidates and a check that turns a match into the byte range to
/// replace, or rejects it.
struct Detector {
    kind: SensitiveKind,
    pattern: Regex,
    locate: fn(&str, &Captures) -> Option<Range<usize>>,
}

fn detector(
    kind: SensitiveKind,
    pattern: &str,
    locate: fn(&str, &Captures) -> Option<Range<usize>>,
) -> Detector {
    Detector {
        kind,
        pattern: Regex::new(pattern).expect("redaction patterns are valid"),
        locate,
    }
}

static PLACEHOLDER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\[redacted:(?:email|ip_address|phone_number|card_number|bearer_token|cloud_key|jwt|private_key|url_credentials|api_secret)\]",
    )
    .expect("placeholder pattern is valid")
});

/// The names under which configuration, headers and JSON keep secrets.
const SECRET_KEYWORDS: &str =
    r"passw(?:or)?d|passphrase|secret|api[_-]?key|access[_-]?key|private[_-]?key|token";

/// A whole JSON key whose string value is a secret: `DB_PASSWORD`, `client_secret`, `x-api-key`,
/// `token`, `Authorization`, `Set-Cookie`; not `max_tokens` or `secretName`.
static SECRET_JSON_KEY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"(?i)^[a-z0-9_.-]*(?:{SECRET_KEYWORDS}|authorization|cookie)(?:[_-]?key)?$"
    ))
    .expect("secret key pattern is valid")
});

static DETECTORS: LazyLock<Vec<Detector>> = LazyLock::new(|| {
    use SensitiveKind::*;
    vec![
        // The whole PEM block; a block cut off before its END line is redacted to the end.
        detector(
            PrivateKey,
            r"(?s)-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:.*?-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|.*)",
            whole_match,
        ),
        // JWS (three segments) and JWE (five); the header is base64url JSON, so starts `eyJ`.
        detector(
            Jwt,
            r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)?",
            locate_jwt,
        ),
        detector(CloudKey, r"(?:AKIA|ASIA)[A-Z0-9]{16}", delimited_token),
        detector(
            CloudKey,
            r#"(?i)aws_?secret_?access_?key["']?[ \t]*[=:][ \t]*["']?([A-Za-z0-9/+=]{40})"#,
            locate_aws_secret_key,
        ),
        detector(CloudKey, r"AIza[0-9A-Za-z_-]{35}", delimited_token),
        detector(
            CloudKey,
            r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}",
            delimited_token,
        ),
        detector(CloudKey, r"xox[baprs]-[A-Za-z0-9-]{10,}", delimited_token),
        detector(CloudKey, r"[sr]k_live_[A-Za-z0-9]{10,}", delimited_token),
        // A Slack incoming webhook URL is its own credential; the host stays readable.
        detector(
            CloudKey,
            r"hooks\.slack\.com/services/([A-Za-z0-9_/-]{20,})",
            first_group,
        ),
        detector(CloudKey, r"sk-[A-Za-z0-9_-]{20,}", locate_sk_dash_key),
        detector(
            BearerToken,
            r#"(?i)authorization["']?[ \t]*[:=][ \t]*["']?(?:(basic|bearer|token|digest|negotiate|apikey)[ \t]+)?([^\s"',;]+)"#,
            locate_authorization_header,
        ),
        detector(
            BearerToken,
            r"(?i)bearer[ \t]+([A-Za-z0-9._~+/-]+=*)",
            locate_bearer_token,
        ),
        // `scheme://user:password@host`: only `user:password` is replaced.
        detector(
            UrlCredentials,
            r#"[A-Za-z][A-Za-z0-9+.-]*://([^\s/@:"'<>]*:[^\s/@"'<>]+)@"#,
            first_group,
        ),
        detector(
            ApiSecret,
            &format!(
                r#"(?i)[a-z0-9_.-]*(?:{SECRET_KEYWORDS})(?:[_-]?key)?["']?[ \t]*[=:][ \t]*(?:"([^"\r\n]*)"|'([^'\r\n]*)'|([^\s"',;&)}}\]]+))"#
            ),
            locate_assignment_value,
        ),
        // Contiguous, 4-4-4-4(-3), Amex 4-6-5 and Diners 4-6-4 groupings. The trailing
        // non-alphanumeric is consumed so a longer grouping that runs into digits falls back to a
        // shorter one.
        detector(
            CardNumber,
            r"([0-9]{13,19}|[0-9]{4}[ -][0-9]{4}[ -][0-9]{4}[ -][0-9]{4}(?:[ -][0-9]{3})?|[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5})(?:[^0-9A-Za-z_]|$)",
            locate_card_number,
        ),
        detector(
            Email,
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}",
            locate_email,
        ),
        detector(
            PhoneNumber,
            r"\+[1-9][0-9]{0,2}(?:[ -]?\([0-9]{1,4}\))?(?:[ -]?[0-9]{1,4}){1,6}",
            locate_international_phone,
        ),
        // North American numbers: area code and exchange start 2-9.
        detector(
            PhoneNumber,
            r"(?:1-)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[-.])[2-9][0-9]{2}[-.][0-9]{4}",
            locate_north_american_phone,
        ),
        detector(
            IpAddress,
            r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}",
            locate_ipv4,
        ),
        detector(
            IpAddress,
            r"(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{0,4})",
            locate_ipv6,
        ),
    ]
});

fn char_before(text: &str, at: usize) -> Option<char> {
    text[..at].chars().next_back()
}

fn char_after(text: &str, at: usize) -> Option<char> {
    text[at..].chars().next()
}

fn is_word_char(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn is_ascii_digit(c: Option<char>) -> bool {
    c.is_some_and(|c| c.is_ascii_digit())
}

/// True when `at` continues a decimal number to its left, as in the `7` of `3.7`.
fn follows_decimal_point(text: &str, at: usize) -> bool {
    char_before(text, at) == Some('.') && is_ascii_digit(char_before(text, at - 1))
}

/// True when the text from `at` continues a number with a fraction or another dotted part, as in
/// `.5` or `.4.1`.
fn precedes_decimal_point(text: &str, at: usize) -> bool {
    char_after(text, at) == Some('.') && is_ascii_digit(char_after(text, at + 1))
}

fn whole_match(_text: &str, captures: &Captures) -> Option<Range<usize>> {
    Some(captures.get(0)?.range())
}

fn first_group(_text: &str, captures: &Captures) -> Option<Range<usize>> {
    Some(captures.get(1)?.range())
}

/// A token that is not the tail or head of a longer word.
fn delimited_token(text: &str, captures: &Captures) -> Option<Range<usize>> {
    let span = captures.get(0)?.range();
    let delimited = !is_word_char(char_before(text, span.start))
        && char_before(text, span.start) != Some('-')
        && !is_word_char(char_after(text, span.end));
    delimited.then_some(span)
}

fn locate_jwt(text: &str, captures: &Captures) -> Option<Range<usize>> {
    let span = captures.get(0)?.range();
    let before = char_before(text, span.start);
    let delimited = !is_word_char(before) && !matches!(before, Some('-' | '.'));
    delimited.then_some(span)
}

fn locate_aws_secret_key(text: &str, captures: &Captures) -> Option<Range<usize>> {
    let key = captures.get(1)?.range();
    let after = char_after(text, key.end);
    let delimited = !is_word_char(after) && !matches!(after, Some('/' | '+' | '='));
    delimited.then_some(key)
}

/// `sk-…` keys (OpenAI, Anthropic) are told apart from lowercase resource names such as
/// `sk-payments-reconciliation-worker` by their mixed case and digits.
fn locate_sk_dash_key(text: &str, captures: &Captures) -> Option<Range<usize>> {
    let span = delimited_token(text, captures)?;
    let body = &text[span.start + "sk-".len()..span.end];
    let looks_random =
        body.bytes().any(|b| b.is_ascii_digit()) && body.bytes().any(|b| b.is_ascii_uppercase());
    looks_random.then_some(span)
}

fn locate_authorization_header(text: &str, captures: &Captures) -> Option<Range<usize>> {
    let whole = captures.get(0)?;
    if is_word_char(char_before(text, whole.start())) {
        return None;
    }
    let credentials = captures.get(2)?;
    let has_scheme = captures.get(1).is_some();
    let plausible = if has_scheme {
        !is_placeholder_value(credentials.as_str())
    } else {
        looks_like_token(credentials.as_str())
    };
    plausible.then(|| credentials.range())
}

/// `Bearer <token>` outside a header; the token must contain a digit so that prose such as "the
/// bearer token expired" is left alone.
fn locate_bearer_token(text: &str, captures: &Captures) -> Option<Range<usize>> {
    let whole = captures.get(0)?;
    if is_word_char(char_before(text, whole.start())) {
        return None;
    }
    let token = captures.get(1)?;
    looks_like_token(token.as_str()).then(|| token.range())
}

fn looks_like_token(candidate: &str) -> bool {
    candidate.len() >= 8
        && candidate.bytes().any(|b| b.is_ascii_digit())
        && !is_placeholder_value(candidate)
}

fn locate_assignment_value(_text: &str, captures: &Captures) -> Option<Range<usize>> {
    let value = captures
        .get(1)
        .or_else(|| captures.get(2))
        .or_else(|| captures.get(3))?;
    (!is_placeholder_value(value.as_str())).then(|| value.range())
}

/// Values that stand for a secret without being one: empty, `null`, `***`, `${DB_PASSWORD}`,
/// `<token>`, or a word that says what is wrong with it (`password: required`).
fn is_placeholder_value(value: &str) -> bool {
    const NOT_SECRETS: &[&str] = &[
        "null",
        "nil",
        "none",
        "true",
        "false",
        "empty",
        "redacted",
        "required",
        "missing",
        "invalid",
        "expired",
        "revoked",
        "unset",
        "undefined",
        "not",
        "yes",
        "no",
    ];
    value.is_empty()
        || value.starts_with(['$', '<', '%'])
        || value.starts_with("{{")
        || value.bytes().all(|b| b == b'*')
        || value.bytes().all(|b| b == b'x' || b == b'X')
        || NOT_SECRETS
            .iter()
            .any(|word| value.eq_ignore_ascii_case(word))
}

fn locate_card_number(text: &str, captures: &Captures) -> Option<Range<usize>> {
    let span = captures.get(1)?.range();
    if is_word_char(char_before(text, span.start))
        || follows_decimal_point(text, span.start)
        || precedes_decimal_point(text, span.end)
    {
        return None;
    }
    let digits: Vec<u8> = text[span.clone()]
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| b - b'0')
        .collect();
    (has_card_issuer_prefix(&digits) && passes_luhn(&digits)).then_some(span)
}

/// Whether the number starts like a card of its length from a major network. Keeps decimal
/// nanosecond timestamps (which start with 1) and most numeric ids out.
fn has_card_issuer_prefix(digits: &[u8]) -> bool {
    let prefix = |len: usize| {
        digits[..len]
            .iter()
            .fold(0u32, |n, &d| n * 10 + u32::from(d))
    };
    let length = digits.len();
    if !(13..=19).contains(&length) {
        return false;
    }
    match digits[0] {
        4 => matches!(length, 13 | 16 | 19),                     // Visa
        2 => (2221..=2720).contains(&prefix(4)) && length == 16, // Mastercard 2-series
        5 if (51..=55).contains(&prefix(2)) => length == 16,     // Mastercard
        5 => matches!(prefix(2), 50 | 56..=58),                  // Maestro
        3 if matches!(prefix(2), 34 | 37) => length == 15,       // American Express
        3 if (3528..=3589).contains(&prefix(4)) => length >= 16, // JCB
        3 => (300..=305).contains(&prefix(3)) || matches!(prefix(2), 36 | 38 | 39), // Diners
        6 => true,                                               // Discover, UnionPay, Maestro
        _ => false,
    }
}

fn passes_luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(position, &digit)| {
            let digit = u32::from(digit);
            if position % 2 == 1 {
                let doubled = digit * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                digit
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// How far back [`locate_email`] looks for a `scheme://` that would make the match the user part
/// of a URL; bounded so that a long run without whitespace stays linear.
const URL_LOOKBACK_BYTES: usize = 512;

fn locate_email(text: &str, captures: &Captures) -> Option<Range<usize>> {
    let span = captures.get(0)?.range();
    // `git@github.com:org/repo.git` is a login on a host followed by a path, not an address.
    let scp_style_path =
        char_after(text, span.end) == Some(':') && is_word_char(char_after(text, span.end + 1));
    if is_word_char(char_after(text, span.end))
        || scp_style_path
        || is_in_url_authority(text, span.start)
    {
        return None;
    }
    Some(span)
}

/// True when `at` is between a `://` and the next `/` of the same whitespace-free word, where a
/// `user@host` is URL syntax rather than an email address.
fn is_in_url_authority(text: &str, at: usize) -> bool {
    let mut window_start = at.saturating_sub(URL_LOOKBACK_BYTES);
    while !text.is_char_boundary(window_start) {
        window_start += 1;
    }
    let window = &text[window_start..at];
    let word = window
        .rfind(char::is_whitespace)
        .map_or(window, |i| &window[i..]);
    word.rfind("://")
        .is_some_and(|scheme_end| !word[scheme_end + 3..].contains('/'))
}

fn locate_international_phone(text: &str, captures: &Captures) -> Option<Range<usize>> {
    let whole = captures.get(0)?;
    let before = char_before(text, whole.start());
    if is_word_char(before) || before == Some('+') {
        return None;
    }
    if is_word_char(char_after(text, whole.end())) || precedes_decimal_point(text, whole.end()) {
        return None;
    }
    // The pattern is greedy and may have run into a following number: keep the longest run of
    // whole digit groups that fits E.164's 15 digits.
    let number = whole.as_str().as_bytes();
    let mut digits = 0;
    let mut longest_fit = None;
    for (index, byte) in number.iter().enumerate() {
        if !byte.is_ascii_digit() {
            continue;
        }
        digits += 1;
        let group_ends = number
            .get(index + 1)
            .is_none_or(|next| !next.is_ascii_digit());
        if group_ends && (8..=15).contains(&digits) {
            longest_fit = Some((index + 1, digits));
        }
    }
    let (length, digits) = longest_fit?;
    let has_separator = number[..length]
        .iter()
        .any(|b| matches!(b, b' ' | b'-' | b'('));
    (has_separator || digits >= 10).then(|| whole.start()..whole.start() + length)
}

fn locate_north_american_phone(text: &str, captures: &Captures) -> Option<Range<usize>> {
    let span = captures.get(0)?.range();
    let before = char_before(text, span.start);
    if is_word_char(before) || matches!(before, Some('-' | '.' | '+' | '/')) {
        return None;
    }
    let after = char_after(text, span.end);
    let continues =
        matches!(after, Some('-' | '.')) && is_word_char(char_after(text, span.end + 1));
    if is_word_char(after) || continues {
        return None;
    }
    Some(span)
}

fn locate_ipv4(text: &str, captures: &Captures) -> Option<Range<usize>> {
    let span = captures.get(0)?.range();
    let before = char_before(text, span.start);
    if is_word_char(before) || before == Some('.') {
        return None;
    }
    if is_word_char(char_after(text, span.end)) || precedes_decimal_point(text, span.end) {
        return None;
    }
    let mut octets = [0u8; 4];
    for (slot, part) in octets.iter_mut().zip(text[span.clone()].split('.')) {
        if part.len() > 1 && part.starts_with('0') {
            return None;
        }
        *slot = part.parse().ok()?;
    }
    let unspecified_or_loopback = octets == [0, 0, 0, 0] || octets[0] == 127;
    (!unspecified_or_loopback).then_some(span)
}

fn locate_ipv6(text: &str, captures: &Captures) -> Option<Range<usize>> {
    let mut span = captures.get(0)?.range();
    let candidate = &text[span.clone()];
    // A single colon at either end belongs to the surrounding text (`ip:fe80::1`, `fe80::1: refused`).
    let strips_leading_colon = candidate.starts_with(':') && !candidate.starts_with("::");
    if strips_leading_colon {
        span.start += 1;
    }
    if candidate.ends_with(':') && !candidate.ends_with("::") {
        span.end -= 1;
    }
    if span.start >= span.end {
        return None;
    }
    let before = char_before(text, span.start);
    if is_word_char(before) || before == Some('.') || (before == Some(':') && !strips_leading_colon)
    {
        return None;
    }
    let after = char_after(text, span.end);
    // `(` after the match means a call such as `f64::add(…)`, not an address.
    if is_word_char(after) || after == Some('(') || precedes_decimal_point(text, span.end) {
        return None;
    }
    let address = &text[span.clone()];
    // Requiring a digit keeps all-letter paths such as `cafe::bad` out.
    if address.bytes().filter(|&b| b == b':').count() < 2
        || !address.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    let parsed: Ipv6Addr = address.parse().ok()?;
    (!parsed.is_unspecified() && !parsed.is_loopback()).then_some(span)
}

/// One value of every sensitive kind, each in text that carries it the way tool calls, source
/// errors and user text do: `(secret, text)`. Redacting `text` must leave no trace of `secret`.
/// Tests across the pipeline plant these and look for them in what gets stored.
#[cfg(test)]
pub(crate) const CORPUS: &[(&str, &str)] = &[
    (
        "jane.doe+oncall@example.co.uk",
        "paged jane.doe+oncall@example.co.uk",
    ),
    ("10.0.3.17", "connect to 10.0.3.17:5432 failed"),
    ("7946 0958", "call +44 20 7946 0958 now"),
    ("4111 1111 1111 1111", "card 4111 1111 1111 1111 declined"),
    (
        "abc123def456ghi789",
        "Authorization: Bearer abc123def456ghi789",
    ),
    (
        "AKIAIOSFODNN7EXAMPLE",
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
    ),
    (
        "dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "jwt eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U end",
    ),
    (
        "MIIEowIBAAKCAQEA7",
        "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----",
    ),
    (
        "s3cr3t",
        "postgres://admin:s3cr3t@payments-db:5432/payments",
    ),
    ("hunter2", "password=hunter2 ok"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Redacts `input`, compares with `expected`, and checks the invariants every result keeps.
    #[track_caller]
    fn check(input: &str, expected: &str) {
        let redacted = redact(input);
        assert_eq!(redacted.text, expected, "input: {input:?}");
        let new_placeholders =
            PLACEHOLDER.find_iter(expected).count() - PLACEHOLDER.find_iter(input).count();
        assert_eq!(
            redacted.findings.len(),
            new_placeholders,
            "findings {:?} for {input:?}",
            redacted.findings
        );
        assert_invariants(input, &redacted);
    }

    #[track_caller]
    fn check_all(cases: &[(&str, &str)]) {
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[track_caller]
    fn check_unchanged(inputs: &[&str]) {
        for input in inputs {
            check(input, input);
        }
    }

    /// Findings are ordered, disjoint, on char boundaries, and replacing exactly them in the
    /// input gives the output; redacting the output again changes nothing.
    fn assert_invariants(input: &str, redacted: &Redacted) {
        let mut rebuilt = String::new();
        let mut previous_end = 0;
        for finding in &redacted.findings {
            assert!(finding.start < finding.end, "empty finding {finding:?}");
            assert!(
                finding.start >= previous_end,
                "findings out of order or overlapping"
            );
            assert!(input.is_char_boundary(finding.start) && input.is_char_boundary(finding.end));
            rebuilt.push_str(&input[previous_end..finding.start]);
            rebuilt.push_str(&placeholder(finding.kind));
            previous_end = finding.end;
        }
        rebuilt.push_str(&input[previous_end..]);
        assert_eq!(
            rebuilt, redacted.text,
            "findings do not describe the output"
        );
        assert_eq!(redact(&redacted.text).text, redacted.text, "not idempotent");
    }

    #[test]
    fn the_corpus_is_redacted_whole() {
        for (secret, text) in CORPUS {
            assert!(text.contains(secret));
            let redacted = redact(text).text;
            assert!(
                !redacted.contains(secret),
                "{secret:?} survives in {redacted:?}"
            );
        }
    }

    #[test]
    fn emails() {
        check_all(&[
            (
                "ask jane.doe+oncall@example.co.uk about it",
                "ask [redacted:email] about it",
            ),
            ("<ops@acme.io>", "<[redacted:email]>"),
            ("mailto:sre@corp.example.com.", "mailto:[redacted:email]."),
        ]);
        check_unchanged(&[
            "nginx@sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "pip install requests@2.31.0",
            "@oncall-team please look",
        ]);
    }

    #[test]
    fn ip_addresses() {
        check_all(&[
            (
                "connect to 10.0.3.17:5432 failed",
                "connect to [redacted:ip_address]:5432 failed",
            ),
            (
                "from 192.168.1.254, 172.16.0.1/12",
                "from [redacted:ip_address], [redacted:ip_address]/12",
            ),
            (
                "peer 2001:db8:85a3:0:0:8a2e:370:7334 reset",
                "peer [redacted:ip_address] reset",
            ),
            (
                "node fe80::1ff:fe23:4567:890a up",
                "node [redacted:ip_address] up",
            ),
            ("[2001:db8::1]:8443", "[[redacted:ip_address]]:8443"),
            ("src=::ffff:192.0.2.128", "src=[redacted:ip_address]"),
            (
                "ip:2001:db8::42: refused",
                "ip:[redacted:ip_address]: refused",
            ),
        ]);
        check_unchanged(&[
            "upgraded to 1.2.3",
            "version 1.2.3.4.5",
            "10.0.0.256 is not an address",
            "v1.2.3.4",
            "at 14:02:05 and 2026-11-27T14:02:05.123Z",
            "bind 0.0.0.0:8080 and 127.0.0.1, ::1, ::",
            "std::io::Error and f64::add(x)",
            "mac 00:1a:2b:3c:4d:5e",
            "cafe::bad",
            "build 1.2.3.04",
        ]);
    }

    #[test]
    fn phone_numbers() {
        check_all(&[
            (
                "call +44 20 7946 0958 now",
                "call [redacted:phone_number] now",
            ),
            ("(+1 415-555-0132)", "([redacted:phone_number])"),
            (
                "on-call: (415) 555-0132",
                "on-call: [redacted:phone_number]",
            ),
            ("pager 415-555-0132.", "pager [redacted:phone_number]."),
            ("sms 1-800-555-0199", "sms [redacted:phone_number]"),
            ("+14155550132", "[redacted:phone_number]"),
        ]);
        check_unchanged(&[
            "on 2026-11-27 at 14:02:05",
            "p99 was 0.2134 then 1234567890",
            "port 8080, pid 31337, 5432",
            "took 150ms, then 2m30s, +1500 requests, +12.5%",
            "error rate +0.25 over 415 requests",
            "tz +02:00",
            "checkout-415-555-0132",
            "123-456-7890",
        ]);
    }

    #[test]
    fn card_numbers() {
        check_all(&[
            (
                "card 4111 1111 1111 1111 declined",
                "card [redacted:card_number] declined",
            ),
            ("4111-1111-1111-1111", "[redacted:card_number]"),
            ("pan=5555555555554444;", "pan=[redacted:card_number];"),
            ("amex 3782 822463 10005", "amex [redacted:card_number]"),
            ("4111 1111 1111 1111 2026", "[redacted:card_number] 2026"),
            (
                "4111111111111111,4012888888881881",
                "[redacted:card_number],[redacted:card_number]",
            ),
        ]);
        check_unchanged(&[
            // Luhn fails.
            "4111 1111 1111 1112",
            "4111111111111112",
            // Nanosecond timestamps and decimal fractions.
            "ts 1732712525000000000",
            "0.4111111111111111",
            // Part of a longer number or hex id.
            "94111111111111111",
            "a4111111111111111b",
        ]);
    }

    #[test]
    fn bearer_and_basic_credentials() {
        check_all(&[
            (
                "Authorization: Bearer abc123def456ghi789",
                "Authorization: Bearer [redacted:bearer_token]",
            ),
            (
                "curl -H 'authorization: basic dXNlcjpwYXNzd29yZA=='",
                "curl -H 'authorization: basic [redacted:bearer_token]'",
            ),
            (
                "Proxy-Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l",
                "Proxy-Authorization: Basic [redacted:bearer_token]",
            ),
            (
                "sent Bearer 7f9c2ba4e88f827d616045507605853e",
                "sent Bearer [redacted:bearer_token]",
            ),
        ]);
        check_unchanged(&[
            "the bearer token expired",
            "Authorization: denied for user",
            "WWW-Authenticate: Bearer realm=\"api\"",
        ]);
    }

    #[test]
    fn cloud_keys() {
        check_all(&[
            (
                "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
                "AWS_ACCESS_KEY_ID=[redacted:cloud_key]",
            ),
            ("role ASIAY34FZKBOKMUTVV7A", "role [redacted:cloud_key]"),
            (
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "aws_secret_access_key = [redacted:cloud_key]",
            ),
            (
                "key AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI.",
                "key [redacted:cloud_key].",
            ),
            (
                "ghp_1A2b3C4d5E6f7G8h9I0jKlMnOpQrStUvWxYz",
                "[redacted:cloud_key]",
            ),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
                "[redacted:cloud_key]",
            ),
            (
                "slack xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
                "slack [redacted:cloud_key]",
            ),
            (
                "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
                "https://hooks.slack.com/services/[redacted:cloud_key]",
            ),
            (
                "stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc",
                "stripe [redacted:cloud_key]",
            ),
            (
                "OPENAI_API_KEY=sk-proj-Ab3dEf6hIj9kLmN0pQrS",
                "OPENAI_API_KEY=[redacted:cloud_key]",
            ),
        ]);
        check_unchanged(&[
            "sk-payments-reconciliation-worker",
            "disk-pressure-eviction-threshold",
            "AKIAshort",
        ]);
    }

    #[test]
    fn jwts() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        check_all(&[
            (&format!("jwt {jwt} end"), "jwt [redacted:jwt] end"),
            (
                &format!("Authorization: Bearer {jwt}"),
                "Authorization: Bearer [redacted:jwt]",
            ),
            (
                &format!("?access_token={jwt}&x=1"),
                "?access_token=[redacted:jwt]&x=1",
            ),
        ]);
    }

    #[test]
    fn private_keys() {
        check_all(&[
            (
                "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc+/=\n-----END RSA PRIVATE KEY-----\nnext line",
                "key:\n[redacted:private_key]\nnext line",
            ),
            (
                "-----BEGIN PRIVATE KEY-----\\nMIIEvQ\\n-----END PRIVATE KEY-----",
                "[redacted:private_key]",
            ),
            (
                "truncated: -----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA",
                "truncated: [redacted:private_key]",
            ),
        ]);
        check_unchanged(&["-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"]);
    }

    #[test]
    fn url_credentials() {
        check_all(&[
            (
                "postgres://admin:s3cr3t@payments-db:5432/payments",
                "postgres://[redacted:url_credentials]@payments-db:5432/payments",
            ),
            (
                "redis://:hunter2@cache.internal:6379",
                "redis://[redacted:url_credentials]@cache.internal:6379",
            ),
            (
                "https://deploy:p4ss@registry.example.com/v2/",
                "https://[redacted:url_credentials]@registry.example.com/v2/",
            ),
        ]);
        check_unchanged(&[
            "https://grafana.example.com:3000/d/abc?from=now-1h",
            "ssh://git@github.com/org/repo",
            "git clone git@github.com:acme/payments.git",
        ]);
    }

    #[test]
    fn secret_assignments() {
        check_all(&[
            ("password=hunter2 ok", "password=[redacted:api_secret] ok"),
            ("DB_PASSWORD: s3cret!", "DB_PASSWORD: [redacted:api_secret]"),
            (
                r#"{"client_secret": "abc def", "user": "x"}"#,
                r#"{"client_secret": "[redacted:api_secret]", "user": "x"}"#,
            ),
            ("api_key='k-123'", "api_key='[redacted:api_secret]'"),
            (
                "x-api-key: 9a8b7c6d5e4f",
                "x-api-key: [redacted:api_secret]",
            ),
            (
                "?token=abc123&page=2",
                "?token=[redacted:api_secret]&page=2",
            ),
            ("secret: correcthorse", "secret: [redacted:api_secret]"),
        ]);
        check_unchanged(&[
            "password: required",
            "Access denied for user 'app' (using password: YES)",
            "password=${DB_PASSWORD}",
            "secret=\"\"",
            "max_tokens=1500 tokens_used: 900",
            "secretName: db-creds",
            "FATAL: password authentication failed for user \"app\"",
            "kind: Secret",
        ]);
    }

    #[test]
    fn ordinary_sre_text_is_left_alone() {
        check_unchanged(&[
            "payments-db is down; checkout-7f9c8d-x2k4p restarted 3 times",
            "pod checkout-7f9c in namespace prod-eu-1 OOMKilled",
            "request 123e4567-e89b-12d3-a456-426614174000 failed",
            "trace 5b8efff798038103d269b633813fc60c span eee19b7ec3c1b174",
            "image sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "commit 3f786850e387550fdab836ed7e6dc881de23001b",
            "started 2026-11-27T14:02:05.123456789+01:00, took 1h2m3s",
            "sum(rate(http_requests_total{job=\"api\",code=~\"5..\"}[5m])) by (pod) > 0.05",
            "histogram_quantile(0.99, rate(latency_bucket[5m])) = 0.2134",
            "deployment.apps/checkout-v2 scaled to 12, hpa min=3 max=20",
            "x509: certificate has expired or is not yet valid: current time 2026-11-27T14:02:05Z",
            "upgrade postgres 15.4 -> 16.1, kernel 5.15.0-1034-aws",
            "error: connection refused (os error 111) after 30s",
            "latency p50=12ms p99=1.5s at 14:02",
        ]);
    }

    #[test]
    fn overlaps_take_the_longest_then_the_most_specific() {
        check_all(&[
            // A URL in a secret assignment: the whole value goes.
            (
                "secret=postgres://u:p@db/app",
                "secret=[redacted:api_secret]",
            ),
            // The same bytes as a bearer token and as a JWT: the JWT is more specific.
            (
                "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
                "Bearer [redacted:jwt]",
            ),
            // The password of a URL is not also an email.
            (
                "https://bob:pw@mail.example.com/inbox",
                "https://[redacted:url_credentials]@mail.example.com/inbox",
            ),
            // An IPv4 inside an IPv6 address is one finding.
            ("::ffff:10.1.2.3", "[redacted:ip_address]"),
            // Two phone numbers written as one run of digits are one finding.
            ("+44 20 7946 0958 415-555-0132", "[redacted:phone_number]"),
            (
                "+44 20 7946 0958(415-555-0132 ",
                "[redacted:phone_number]([redacted:phone_number] ",
            ),
        ]);
    }

    #[test]
    fn a_value_rejected_for_its_neighbour_is_caught_once_the_neighbour_is_redacted() {
        // The phone number is glued to the email, so the first pass rejects it; once the email is
        // a placeholder, the shorter number is a phone number on its own.
        let input = "+44 20 7946 0958x@y.com";
        check(input, "[redacted:phone_number] [redacted:email]");
        assert_eq!(
            redact(input).findings,
            vec![
                Finding {
                    kind: SensitiveKind::PhoneNumber,
                    start: 0,
                    end: 11
                },
                Finding {
                    kind: SensitiveKind::Email,
                    start: 12,
                    end: 23
                },
            ]
        );
    }

    #[test]
    fn unicode_around_findings_is_preserved() {
        check_all(&[
            (
                "café → jane@example.com ✓ 日本",
                "café → [redacted:email] ✓ 日本",
            ),
            ("über→10.0.0.1", "über→[redacted:ip_address]"),
            ("über10.0.0.1", "über10.0.0.1"),
            (
                "パスワード password=秘密123 です",
                "パスワード password=[redacted:api_secret] です",
            ),
        ]);
        // Non-ASCII digits are not digits to any detector.
        check_unchanged(&["٤١١١١١١١١١١١١١١١", "１０.０.０.１"]);
    }

    #[test]
    fn findings_point_into_the_original_text() {
        let input = "é a@b.io then 10.0.0.1";
        let redacted = redact(input);
        assert_eq!(
            redacted.findings,
            vec![
                Finding {
                    kind: SensitiveKind::Email,
                    start: 3,
                    end: 9
                },
                Finding {
                    kind: SensitiveKind::IpAddress,
                    start: 15,
                    end: 23
                },
            ]
        );
        assert_eq!(&input[3..9], "a@b.io");
        assert_eq!(&input[15..23], "10.0.0.1");
    }

    #[test]
    fn placeholders_already_in_the_text_are_not_findings() {
        check_unchanged(&[
            "password=[redacted:api_secret]",
            "Authorization: Basic [redacted:bearer_token]",
            "postgres://[redacted:url_credentials]@db",
        ]);
    }

    #[test]
    fn redact_json_redacts_values_and_keeps_keys() {
        let mut value = json!({
            "user": "jane@example.com",
            "jane@example.com": "keys are kept",
            "steps": [
                {"tool": "psql", "result": "connect 10.0.0.5 as postgres://app:pw@db/x"},
                ["nested", {"token": "opaque-value"}],
                42, true, null
            ],
            "headers": {
                "Authorization": "Basic dXNlcjpwYXNz",
                "x-api-key": "[redacted:api_secret]",
                "Cookie": "session=abc; theme=dark",
                "user-agent": "curl/8.5.0"
            },
            "log": "Bearer abc123def456 from +44 20 7946 0958",
            "password": "",
            "max_tokens": "1500",
            "note": "nothing to see"
        });
        let findings = redact_json(&mut value);
        assert_eq!(
            value,
            json!({
                "user": "[redacted:email]",
                "jane@example.com": "keys are kept",
                "steps": [
                    {"tool": "psql", "result": "connect [redacted:ip_address] as postgres://[redacted:url_credentials]@db/x"},
                    ["nested", {"token": "[redacted:api_secret]"}],
                    42, true, null
                ],
                "headers": {
                    "Authorization": "[redacted:bearer_token]",
                    "x-api-key": "[redacted:api_secret]",
                    "Cookie": "[redacted:api_secret]",
                    "user-agent": "curl/8.5.0"
                },
                "log": "Bearer [redacted:bearer_token] from [redacted:phone_number]",
                "password": "",
                "max_tokens": "1500",
                "note": "nothing to see"
            })
        );
        assert_eq!(findings, 8);
        assert_eq!(redact_json(&mut value), 0, "redacting again finds nothing");
    }

    #[test]
    fn redact_json_keeps_the_specific_kind_of_a_whole_secret_value() {
        let mut value = json!({
            "api_key": "AKIAIOSFODNN7EXAMPLE",
            "passphrase": "two words",
            "password": "see [redacted:email] for it"
        });
        assert_eq!(redact_json(&mut value), 3);
        assert_eq!(
            value,
            json!({
                "api_key": "[redacted:cloud_key]",
                "passphrase": "[redacted:api_secret]",
                "password": "[redacted:api_secret]"
            })
        );
    }

    /// Pieces of realistic text, concatenated at random so that detectors meet each other and
    /// non-ASCII text at every boundary.
    const FRAGMENTS: &[&str] = &[
        " ",
        "\n",
        "-",
        ".",
        ":",
        "::",
        "=",
        "@",
        "/",
        "(",
        ")",
        "[",
        "]",
        "\"",
        "'",
        ",",
        "+",
        "é",
        "日本",
        "a",
        "Z",
        "0",
        "7",
        "12",
        "255",
        "1.2",
        "10.0.0.1",
        "fe80::1",
        "2001:db8",
        "jane@example.com",
        "example.com",
        "password",
        "password=",
        "secret: ",
        "token=",
        "Bearer ",
        "Authorization: Basic ",
        "abc123def456",
        "postgres://",
        "u:p@h",
        "+44 20 7946 0958",
        "(415) 555-0132",
        "415-555-0132",
        "4111 1111 1111 1111",
        "4111111111111111",
        "AKIAIOSFODNN7EXAMPLE",
        "eyJhbGciOiJIUzI1NiJ9",
        ".eyJzdWIiOiIxIn0",
        ".c2ln",
        "-----BEGIN RSA PRIVATE KEY-----",
        "-----END RSA PRIVATE KEY-----",
        "sk-",
        "Ab3dEf6hIj9kLmN0pQrS",
        "[redacted:email]",
        "2026-11-27T14:02:05Z",
        "payments-db",
        "checkout-7f9c",
    ];

    fn fragment_text() -> impl Strategy<Value = String> {
        prop::collection::vec(prop::sample::select(FRAGMENTS), 0..24)
            .prop_map(|parts| parts.concat())
    }

    /// Prefixes of keys detected with no digit, `@`, `:`, `=` or `-----` nearby.
    const KEY_PREFIXES: &[&str] = &[
        "AKIA",
        "ASIA",
        "AIza",
        "ghp_",
        "gho_",
        "ghs_",
        "ghu_",
        "ghr_",
        "github_pat_",
        "xox",
        "sk_live_",
        "rk_live_",
        "eyJ",
    ];

    proptest! {
        #[test]
        fn arbitrary_text_keeps_the_invariants(input in any::<String>()) {
            let redacted = redact(&input);
            assert_invariants(&input, &redacted);
        }

        #[test]
        fn mixed_fragments_keep_the_invariants(input in fragment_text()) {
            let redacted = redact(&input);
            assert_invariants(&input, &redacted);
        }

        #[test]
        fn text_without_trigger_characters_is_unchanged(
            input in "[^0-9@:=]*|(?:[a-zA-Z ._/+-]|Bearer |sk-|secret |é)*"
        ) {
            prop_assume!(!input.contains("-----"));
            prop_assume!(!KEY_PREFIXES.iter().any(|prefix| input.contains(prefix)));
            let redacted = redact(&input);
            prop_assert_eq!(&redacted.text, &input);
            prop_assert!(redacted.findings.is_empty());
        }
    }
}
