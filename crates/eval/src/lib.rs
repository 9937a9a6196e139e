//! Replay and evaluation. A label's frozen world is served to a candidate agent through isolated
//! sessions ([`session`], [`tools`], [`matching`]); the agent's answer is graded against the
//! ground truth ([`grade`], [`openrca`], and optionally an LLM [`judge`]); runs are summarised and compared ([`stats`],
//! [`report`]). The HTTP faces are mounted by the server; this crate serves nothing itself.

pub mod agent;
pub mod grade;
pub mod judge;
pub mod labels;
pub mod matching;
pub mod openrca;
pub mod report;
pub mod run;
pub mod session;
pub mod stats;
pub mod tools;
pub mod world;

pub use labels::LabelVersion;
pub use session::{Session, SessionRecord, Sessions};
pub use world::ReplayWorld;
