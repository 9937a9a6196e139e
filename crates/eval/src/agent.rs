//! Candidate agents: `http://…` (evalmint POSTs the session and reads the answer), `cmd:…` (a
//! subprocess with the session's URLs in its environment, the trigger on stdin and the answer on
//! stdout), and agents the binary brings itself (the simulator's `sim:v1`/`sim:v2`), which reach
//! the snapshot through the session's URLs like any other.

use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;

use evalmint_model::{AgentAnswer, Trigger};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The most bytes read of an agent's answer.
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// Where a session answers.
#[derive(Debug, Clone)]
pub struct SessionUrls {
    pub mcp: String,
    pub http: String,
    pub prometheus: String,
}

/// What an agent is given for one attempt.
#[derive(Debug, Clone)]
pub struct AgentInput {
    pub session: String,
    pub trigger: Option<Trigger>,
    pub urls: SessionUrls,
    pub deadline: jiff::Timestamp,
    /// Distinguishes attempts of the same label (for agents that sample).
    pub attempt: u32,
    pub label_id: String,
}

/// Why an attempt produced no gradable answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AgentError {
    #[error("the agent failed: {0}")]
    Failed(String),
    #[error("the agent's answer is malformed: {0}")]
    Malformed(String),
}

pub type AgentFuture<'a> =
    Pin<Box<dyn Future<Output = Result<AgentAnswer, AgentError>> + Send + 'a>>;

/// A candidate agent.
pub trait Agent: Send + Sync {
    fn investigate<'a>(&'a self, input: &'a AgentInput) -> AgentFuture<'a>;
}

/// An agent the binary provides for specs this crate does not know (`sim:v1`).
pub type AgentFactory = Arc<dyn Fn(&str) -> Option<Arc<dyn Agent>> + Send + Sync>;

/// Builds the agent a spec names.
pub fn from_spec(spec: &str, extra: Option<&AgentFactory>) -> Result<Arc<dyn Agent>, String> {
    if spec.starts_with("http://") || spec.starts_with("https://") {
        return Ok(Arc::new(HttpAgent {
            url: spec.to_owned(),
            client: reqwest::Client::new(),
        }));
    }
    if let Some(command) = spec.strip_prefix("cmd:") {
        if command.trim().is_empty() {
            return Err("cmd: needs a command".to_owned());
        }
        return Ok(Arc::new(CommandAgent {
            command: command.to_owned(),
        }));
    }
    extra
        .and_then(|f| f(spec))
        .ok_or_else(|| format!("unknown agent {spec:?}: use http://…, cmd:… or sim:v1/sim:v2"))
}

/// Reads an answer: `{"conclusion": "...", "rca": {"component", "category", "onset"}}`.
pub fn parse_answer(bytes: &[u8]) -> Result<AgentAnswer, AgentError> {
    let answer: AgentAnswer = serde_json::from_slice(bytes).map_err(|e| {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned();
        AgentError::Malformed(format!("{e} (answer began {head:?})"))
    })?;
    if answer.conclusion.trim().is_empty()
        && answer.rca.as_ref().is_none_or(|r| r.component.is_none())
    {
        return Err(AgentError::Malformed(
            "neither a conclusion nor an rca component".to_owned(),
        ));
    }
    Ok(answer)
}

fn request_body(input: &AgentInput) -> serde_json::Value {
    json!({
        "session": input.session,
        "trigger": input.trigger,
        "tools": {"mcp": input.urls.mcp, "http": input.urls.http, "prometheus": input.urls.prometheus},
        "deadline": input.deadline,
    })
}

struct HttpAgent {
    url: String,
    client: reqwest::Client,
}

impl Agent for HttpAgent {
    fn investigate<'a>(&'a self, input: &'a AgentInput) -> AgentFuture<'a> {
        Box::pin(async move {
            let mut response = self
                .client
                .post(&self.url)
                .json(&request_body(input))
                .send()
                .await
                .map_err(|e| AgentError::Failed(e.without_url().to_string()))?;
            let status = response.status();
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| AgentError::Failed(e.without_url().to_string()))?
            {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_ANSWER_BYTES {
                    return Err(AgentError::Malformed(format!(
                        "answer larger than {MAX_ANSWER_BYTES} bytes"
                    )));
                }
            }
            if !status.is_success() {
                return Err(AgentError::Failed(format!("the agent answered {status}")));
            }
            parse_answer(&body)
        })
    }
}

struct CommandAgent {
    command: String,
}

impl Agent for CommandAgent {
    fn investigate<'a>(&'a self, input: &'a AgentInput) -> AgentFuture<'a> {
        Box::pin(async move {
            let mut child = tokio::process::Command::new("sh")
                .arg("-c")
                .arg(&self.command)
                .env("EVALMINT_SESSION", &input.session)
                .env("EVALMINT_MCP_URL", &input.urls.mcp)
                .env("EVALMINT_TOOLS_URL", &input.urls.http)
                .env("EVALMINT_PROMETHEUS_URL", &input.urls.prometheus)
                .env("EVALMINT_DEADLINE", input.deadline.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| AgentError::Failed(format!("cannot start the command: {e}")))?;
            let trigger = serde_json::to_vec(&request_body(input)).unwrap_or_default();
            if let Some(mut stdin) = child.stdin.take() {
                // An agent that does not read its stdin is fine.
                let _ = stdin.write_all(&trigger).await;
            }
            let mut stdout = child.stdout.take().expect("piped");
            let mut out = Vec::new();
            (&mut stdout)
                .take(MAX_ANSWER_BYTES as u64 + 1)
                .read_to_end(&mut out)
                .await
                .map_err(|e| AgentError::Failed(format!("reading its output: {e}")))?;
            let status = child
                .wait()
                .await
                .map_err(|e| AgentError::Failed(format!("waiting for it: {e}")))?;
            if !status.success() {
                return Err(AgentError::Failed(format!(
                    "the command exited with {status}"
                )));
            }
            if out.len() > MAX_ANSWER_BYTES {
                return Err(AgentError::Malformed(format!(
                    "answer larger than {MAX_ANSWER_BYTES} bytes"
                )));
            }
            parse_answer(&out)
        })
    }
}
