//! `evalmint feedback erase --user ID`: a client of `DELETE /api/v1/feedback`, for a user's
//! request to have their feedback deleted. Prints what was erased.

use crate::client::ServerArgs;

#[derive(Debug, clap::Subcommand)]
pub(crate) enum FeedbackCommand {
    /// Erase every feedback of one user (needs an admin key): labels drawn only from it are
    /// withdrawn, labels drawn from it in part are drafted again without it.
    Erase {
        #[command(flatten)]
        server: ServerArgs,
        /// The user id the feedback was submitted with.
        #[arg(long = "user")]
        user: String,
        /// Print the JSON answer instead of a summary.
        #[arg(long)]
        json: bool,
    },
}

pub(crate) async fn run(command: FeedbackCommand) -> anyhow::Result<()> {
    match command {
        FeedbackCommand::Erase { server, user, json } => {
            let erasure = server
                .client()?
                .delete("/api/v1/feedback", &[("user_id", &user)])
                .await?;
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
