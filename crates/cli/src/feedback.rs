//! `evalmint feedback erase --user ID | --id FEEDBACK_ID`: a client of `DELETE /api/v1/feedback`
//! and `DELETE /api/v1/feedback/{id}`, for a request to have feedback deleted. Prints what was
//! erased.

use crate::client::ServerArgs;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum FeedbackCommand {
    /// Erase every feedback of one user, or one feedback by id (needs an admin key): labels
    /// drawn only from it are withdrawn, labels drawn from it in part are drafted again without
    /// it.
    Erase {
        #[command(flatten)]
        server: ServerArgs,
        /// The user id the feedback was submitted with.
        #[arg(long = "user", required_unless_present = "id", conflicts_with = "id")]
        user: Option<String>,
        /// One feedback's id (the way to erase feedback sent without a user id).
        #[arg(long = "id")]
        id: Option<String>,
        /// Print the JSON answer instead of a summary.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(command: FeedbackCommand) -> anyhow::Result<()> {
    match command {
        FeedbackCommand::Erase {
            server,
            user,
            id,
            json,
        } => {
            let client = server.client()?;
            let erasure = match (user, id) {
                (Some(user), _) => {
                    client
                        .delete("/api/v1/feedback", &[("user_id", &user)])
                        .await?
                }
                (None, Some(id)) => client.delete(&feedback_path(&id)?, &[]).await?,
                (None, None) => anyhow::bail!("name what to erase: --user ID or --id FEEDBACK_ID"),
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&erasure)?);
                return Ok(());
            }
            let count = |field: &str| erasure[field].as_u64().unwrap_or(0);
            println!(
                "erased {} feedback; {} label(s) withdrawn, {} re-drafted; {} snapshot quer(ies) and {} blob(s) released",
                count("feedback_erased"),
                count("labels_withdrawn"),
                count("labels_redrafted"),
                count("queries_removed"),
                count("blobs_released"),
            );
            println!("audit record {}", erasure["id"].as_str().unwrap_or("-"));
            Ok(())
        }
    }
}

/// The path of one feedback; the id is checked here so it cannot reshape the path.
fn feedback_path(id: &str) -> anyhow::Result<String> {
    let id: evalmint_model::FeedbackId = id
        .trim()
        .parse()
        .map_err(|_| anyhow::anyhow!("--id must be a feedback id (a UUID), got {id:?}"))?;
    Ok(format!("/api/v1/feedback/{id}"))
}
