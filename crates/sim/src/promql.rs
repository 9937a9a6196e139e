//! The PromQL subset the telemetry API understands: selectors with label matchers, aggregations
//! (`sum`, `avg`, `max`, `min`, `count`, optionally `by (labels)`) and `topk(k, expr)`.

use std::collections::BTreeMap;

use crate::signals::Metric;
use crate::world::World;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PromqlError {
    #[error("parse error at char {position}: {message}")]
    Parse { position: usize, message: String },
    #[error("unknown metric {0:?}")]
    UnknownMetric(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Matcher {
    pub label: String,
    pub op: MatchOp,
    pub value: String,
    /// For a regex that is only an alternation of literals (the common `a|b|c`), the literals.
    literals: Option<std::collections::HashSet<String>>,
}

impl Matcher {
    pub fn new(label: String, op: MatchOp, value: String) -> Matcher {
        let is_regex = matches!(op, MatchOp::Regex | MatchOp::NotRegex);
        let literals = (is_regex && !value.contains('.') && !value.contains('\\'))
            .then(|| value.split('|').map(str::to_string).collect());
        Matcher {
            label,
            op,
            value,
            literals,
        }
    }

    fn regex_matches(&self, actual: &str) -> bool {
        match &self.literals {
            Some(set) => set.contains(actual),
            None => simple_regex_match(&self.value, actual),
        }
    }

    /// Whether a series whose label has the value `actual` (`None`: no such label) is selected.
    pub fn matches(&self, actual: Option<&str>) -> bool {
        let actual = actual.unwrap_or("");
        match self.op {
            MatchOp::Equal => actual == self.value,
            MatchOp::NotEqual => actual != self.value,
            MatchOp::Regex => self.regex_matches(actual),
            MatchOp::NotRegex => !self.regex_matches(actual),
        }
    }
}

/// Anchored match of an alternation of literals in which `.*` and `.+` are wildcards
/// (`payments.*|cart-redis`). That covers what investigators write against service labels.
pub fn simple_regex_match(pattern: &str, text: &str) -> bool {
    pattern.split('|').any(|branch| glob_match(branch, text))
}

fn glob_match(branch: &str, text: &str) -> bool {
    // Split on wildcards; `.+` needs at least one char.
    let mut parts: Vec<(&str, usize)> = Vec::new(); // literal, min chars of the wildcard before it
    let mut rest = branch;
    let mut pending_min = usize::MAX; // MAX = no wildcard before the first literal
    loop {
        let star = rest.find(".*");
        let plus = rest.find(".+");
        let next = match (star, plus) {
            (Some(a), Some(b)) => Some(if a < b { (a, 0) } else { (b, 1) }),
            (Some(a), None) => Some((a, 0)),
            (None, Some(b)) => Some((b, 1)),
            (None, None) => None,
        };
        match next {
            Some((at, min)) => {
                parts.push((&rest[..at], pending_min));
                pending_min = min;
                rest = &rest[at + 2..];
            }
            None => {
                parts.push((rest, pending_min));
                break;
            }
        }
    }
    // Match on bytes: literals are whole UTF-8 sequences, so a byte match is a character match,
    // and no index can fall inside a character.
    let text = text.as_bytes();
    let find = |haystack: &[u8], needle: &[u8]| -> Option<usize> {
        if needle.is_empty() {
            return Some(0);
        }
        haystack.windows(needle.len()).position(|w| w == needle)
    };
    let mut position = 0usize;
    let last = parts.len() - 1;
    for (i, (literal, min_gap)) in parts.iter().enumerate() {
        let literal = literal.replace("\\.", ".").replace("\\-", "-");
        let literal = literal.as_bytes();
        if *min_gap == usize::MAX {
            if !text[position..].starts_with(literal) {
                return false;
            }
            position += literal.len();
            if i == last {
                return position == text.len();
            }
            continue;
        }
        if i == last {
            return text.len() >= position + min_gap + literal.len() && text.ends_with(literal);
        }
        let search_from = position + min_gap;
        if search_from > text.len() {
            return false;
        }
        match find(&text[search_from..], literal) {
            Some(found) => position = search_from + found + literal.len(),
            None => return false,
        }
    }
    position == text.len()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    Sum,
    Avg,
    Max,
    Min,
    Count,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Selector {
        metric: String,
        matchers: Vec<Matcher>,
    },
    Aggregate {
        op: Aggregation,
        by: Vec<String>,
        inner: Box<Expr>,
    },
    TopK {
        k: usize,
        inner: Box<Expr>,
    },
}

/// One output series: its labels and one value per evaluation step.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub values: Vec<f64>,
}

pub fn parse(query: &str) -> Result<Expr, PromqlError> {
    let mut parser = Parser {
        text: query,
        position: 0,
    };
    let expr = parser.expr()?;
    parser.skip_space();
    if parser.position != query.len() {
        return Err(parser.error("unexpected trailing input"));
    }
    Ok(expr)
}

struct Parser<'a> {
    text: &'a str,
    position: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> PromqlError {
        PromqlError::Parse {
            position: self.position,
            message: message.to_string(),
        }
    }

    fn skip_space(&mut self) {
        while self.rest().starts_with(char::is_whitespace) {
            self.position += 1;
        }
    }

    fn rest(&self) -> &str {
        &self.text[self.position..]
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_space();
        if self.rest().starts_with(token) {
            self.position += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Result<(), PromqlError> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(&format!("expected {token:?}")))
        }
    }

    fn identifier(&mut self) -> Result<String, PromqlError> {
        self.skip_space();
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .unwrap_or(self.rest().len());
        if len == 0 {
            return Err(self.error("expected an identifier"));
        }
        let ident = self.rest()[..len].to_string();
        self.position += len;
        Ok(ident)
    }

    fn string(&mut self) -> Result<String, PromqlError> {
        self.skip_space();
        let quote = self
            .rest()
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'');
        let Some(quote) = quote else {
            return Err(self.error("expected a quoted string"));
        };
        self.position += 1;
        let mut out = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            if c == '\\' {
                if let Some((_, escaped)) = chars.next() {
                    // Keep regex escapes (`\.`) as they are; unescape quotes and backslashes.
                    if escaped != quote && escaped != '\\' {
                        out.push('\\');
                    }
                    out.push(escaped);
                }
                continue;
            }
            if c == quote {
                self.position += i + 1;
                return Ok(out);
            }
            out.push(c);
        }
        Err(self.error("unterminated string"))
    }

    fn label_list(&mut self) -> Result<Vec<String>, PromqlError> {
        self.expect("(")?;
        let mut labels = Vec::new();
        if self.eat(")") {
            return Ok(labels);
        }
        loop {
            labels.push(self.identifier()?);
            if self.eat(")") {
                return Ok(labels);
            }
            self.expect(",")?;
        }
    }

    fn expr(&mut self) -> Result<Expr, PromqlError> {
        let name = self.identifier()?;
        let aggregation = match name.as_str() {
            "sum" => Some(Aggregation::Sum),
            "avg" => Some(Aggregation::Avg),
            "max" => Some(Aggregation::Max),
            "min" => Some(Aggregation::Min),
            "count" => Some(Aggregation::Count),
            _ => None,
        };
        self.skip_space();
        if let Some(op) = aggregation {
            let mut by = Vec::new();
            if self.eat("by") {
                by = self.label_list()?;
            }
            self.expect("(")?;
            let inner = self.expr()?;
            self.expect(")")?;
            if by.is_empty() && self.eat("by") {
                by = self.label_list()?;
            }
            return Ok(Expr::Aggregate {
                op,
                by,
                inner: Box::new(inner),
            });
        }
        if name == "topk" && self.rest().starts_with('(') {
            self.expect("(")?;
            self.skip_space();
            let len = self
                .rest()
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(self.rest().len());
            let k: usize = self.rest()[..len]
                .parse()
                .map_err(|_| self.error("expected an integer k"))?;
            self.position += len;
            self.expect(",")?;
            let inner = self.expr()?;
            self.expect(")")?;
            return Ok(Expr::TopK {
                k,
                inner: Box::new(inner),
            });
        }
        let mut matchers = Vec::new();
        if self.eat("{") && !self.eat("}") {
            {
                loop {
                    let label = self.identifier()?;
                    self.skip_space();
                    let op = if self.eat("=~") {
                        MatchOp::Regex
                    } else if self.eat("!~") {
                        MatchOp::NotRegex
                    } else if self.eat("!=") {
                        MatchOp::NotEqual
                    } else if self.eat("=") {
                        MatchOp::Equal
                    } else {
                        return Err(self.error("expected a label matcher operator"));
                    };
                    let value = self.string()?;
                    matchers.push(Matcher::new(label, op, value));
                    if self.eat("}") {
                        break;
                    }
                    self.expect(",")?;
                    if self.eat("}") {
                        break;
                    }
                }
            }
        }
        Ok(Expr::Selector {
            metric: name,
            matchers,
        })
    }
}

/// Where selectors find their series: the simulated world computes them, a recorded world reads
/// them from its samples. A value with no sample in reach is NaN and left out of answers.
pub trait SeriesSource {
    /// The series of `metric` whose labels satisfy every matcher, one value per instant of `times`.
    fn select(
        &self,
        metric: &str,
        matchers: &[Matcher],
        times: &[i64],
    ) -> Result<Vec<Series>, PromqlError>;
}

impl SeriesSource for World {
    fn select(
        &self,
        metric: &str,
        matchers: &[Matcher],
        times: &[i64],
    ) -> Result<Vec<Series>, PromqlError> {
        let world = self;
        let metric = Metric::from_prom_name(metric)
            .ok_or_else(|| PromqlError::UnknownMetric(metric.to_owned()))?;
        let mut out = Vec::new();
        for component in 0..world.topology.components.len() {
            if !world.has_metric(component, metric) {
                continue;
            }
            if !matchers
                .iter()
                .all(|m| m.matches(world.label_value(component, metric, &m.label)))
            {
                continue;
            }
            let labels: BTreeMap<String, String> = world
                .series_labels(component, metric)
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            let values = times
                .iter()
                .map(|&t| world.metric_value(component, metric, t))
                .collect();
            out.push(Series { labels, values });
        }
        Ok(out)
    }
}

/// Evaluates `expr` at every instant of `times` (unix seconds).
pub fn evaluate(
    world: &dyn SeriesSource,
    expr: &Expr,
    times: &[i64],
) -> Result<Vec<Series>, PromqlError> {
    match expr {
        Expr::Selector { metric, matchers } => world.select(metric, matchers, times),
        Expr::Aggregate { op, by, inner } => {
            let series = evaluate(world, inner, times)?;
            let mut groups: BTreeMap<Vec<(String, String)>, Vec<Series>> = BTreeMap::new();
            for s in series {
                let key: Vec<(String, String)> = by
                    .iter()
                    .filter_map(|l| s.labels.get(l).map(|v| (l.clone(), v.clone())))
                    .collect();
                groups.entry(key).or_default().push(s);
            }
            Ok(groups
                .into_iter()
                .map(|(key, members)| {
                    let values = (0..times.len())
                        .map(|i| {
                            // Members without a sample at this instant take no part.
                            let column =
                                members.iter().map(|m| m.values[i]).filter(|v| !v.is_nan());
                            let present = column.clone().count();
                            if present == 0 {
                                return f64::NAN;
                            }
                            match op {
                                Aggregation::Sum => column.sum(),
                                Aggregation::Avg => column.sum::<f64>() / present as f64,
                                Aggregation::Max => column.fold(f64::MIN, f64::max),
                                Aggregation::Min => column.fold(f64::MAX, f64::min),
                                Aggregation::Count => present as f64,
                            }
                        })
                        .collect();
                    Series {
                        labels: key.into_iter().collect(),
                        values,
                    }
                })
                .collect())
        }
        Expr::TopK { k, inner } => {
            let mut series = evaluate(world, inner, times)?;
            // Rank by the peak over the range (Prometheus ranks per step; a range view wants peaks).
            let peak = |s: &Series| {
                s.values
                    .iter()
                    .copied()
                    .filter(|v| !v.is_nan())
                    .fold(f64::MIN, f64::max)
            };
            series.sort_by(|a, b| peak(b).total_cmp(&peak(a)));
            series.truncate(*k);
            Ok(series)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_selectors_aggregations_and_topk() {
        let e = parse(r#"max by (service) (request_error_ratio{service=~"checkout|payments.*", kind!="redis"})"#).unwrap();
        let Expr::Aggregate { op, by, inner } = e else {
            panic!("not an aggregate")
        };
        assert_eq!(op, Aggregation::Max);
        assert_eq!(by, vec!["service".to_string()]);
        let Expr::Selector { metric, matchers } = *inner else {
            panic!("not a selector")
        };
        assert_eq!(metric, "request_error_ratio");
        assert_eq!(matchers.len(), 2);
        assert_eq!(matchers[0].op, MatchOp::Regex);
        assert_eq!(matchers[1].op, MatchOp::NotEqual);
        assert!(matches!(
            parse("topk(3, cpu_usage_ratio)").unwrap(),
            Expr::TopK { k: 3, .. }
        ));
        assert!(matches!(
            parse("sum(request_rate_per_second) by (team)").unwrap(),
            Expr::Aggregate { .. }
        ));
        assert!(parse("rate(x[5m])").is_err());
        assert!(parse("cpu_usage_ratio{service=\"a\"").is_err());
    }

    #[test]
    fn regex_subset_is_anchored_with_wildcards() {
        assert!(simple_regex_match("checkout|payments", "payments"));
        assert!(!simple_regex_match("checkout|payments", "payments-db"));
        assert!(simple_regex_match("payments.*", "payments-db"));
        assert!(simple_regex_match("payments.*", "payments"));
        assert!(!simple_regex_match("payments.+", "payments"));
        assert!(simple_regex_match(".*-db", "orders-db"));
        assert!(simple_regex_match("or.*s-d.*", "orders-db"));
        assert!(!simple_regex_match(".*-db", "orders-redis"));
        assert!(simple_regex_match("payments\\-db", "payments-db"));
        // Multi-byte text never splits a character.
        assert!(!simple_regex_match(".+x", "aé"));
        assert!(simple_regex_match(".+é", "aé"));
        assert!(!simple_regex_match("a.+b.*", "aéb"[..1].as_ref()));
        assert!(simple_regex_match("a.+b.*", "aébé"));
    }
}
