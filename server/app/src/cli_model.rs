//! `trellis model show`: how each workspace ranks, as it learned from its own history: the
//! model serving each ranking, its features by weight, what it was fitted on and how it did on
//! history held back from it against the model it replaced, or why the default still applies.

use clap::Subcommand;
use serde_json::{Value, json};
use trellis_grpc::pb;

use crate::cli::{ClientArgs, channel, describe, print};

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// The ranking models of the workspace (`--workspace`), or of every workspace the key sees.
    Show {
        /// Every feature, not only the ten that weigh most.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// The JSON `trellis model show --json` prints, and the table is drawn from.
pub fn models_json(workspaces: &[&pb::WorkspaceStatus]) -> Value {
    json!(
        workspaces
            .iter()
            .map(|workspace| json!({
                "workspace": workspace.workspace,
                "fitted_records": workspace.models_fitted_records,
                "fitted_feedback": workspace.models_fitted_feedback,
                "fits": workspace.models_fits,
                "last_outcome": workspace.models_last_outcome,
                "models": workspace.ranking_models.iter().map(model_json).collect::<Vec<_>>(),
            }))
            .collect::<Vec<_>>()
    )
}

fn model_json(model: &pb::RankingModel) -> Value {
    json!({
        "kind": model.kind,
        "version": model.version,
        "learned": model.learned,
        "default_reason": model.default_reason,
        "features": model.features.iter().map(|feature| json!({
            "name": feature.name,
            "weight": (f64::from(feature.weight) * 1000.0).round() / 1000.0,
        })).collect::<Vec<_>>(),
        "training": model.training.as_ref().map(|training| json!({
            "fitted_at": training.fitted_at.as_ref().map(|at| at.seconds),
            "queries": training.queries,
            "examples": training.examples,
            "positives": training.positives,
            "splits": training.splits,
            "regularisation": training.regularisation,
            "metric": training.metric,
            "validated": training.validated,
            "replaced": training.replaced,
            "validation_queries": training.validation_queries,
            "gain_in_standard_errors": training.gain_in_standard_errors,
        })),
    })
}

pub async fn model(command: ModelCommand) -> anyhow::Result<()> {
    let ModelCommand::Show { all, client } = command;
    let status = pb::server_service_client::ServerServiceClient::new(channel(&client).await?)
        .get_server_status(pb::GetServerStatusRequest {})
        .await
        .map_err(|status| describe(&status))?
        .into_inner();
    let wanted = if client.workspace.is_empty() {
        None
    } else {
        Some(client.workspace.as_str())
    };
    let workspaces: Vec<&pb::WorkspaceStatus> = status
        .workspaces
        .iter()
        .filter(|workspace| wanted.is_none_or(|wanted| workspace.workspace == wanted))
        .collect();
    if let Some(wanted) = wanted
        && workspaces.is_empty()
    {
        anyhow::bail!(
            "--workspace {wanted}: the server has no such workspace (or the key does not reach it)"
        );
    }
    let value = models_json(&workspaces);
    print(&client, &value, |_| {
        for workspace in &workspaces {
            println!("workspace {}", workspace.workspace);
            println!("  last fit: {}", workspace.models_last_outcome);
            if workspace.models_fitted_feedback > 0 {
                println!(
                    "  learned from {} records and {} suggestions taken up or dismissed (trellis feedback)",
                    workspace.models_fitted_records, workspace.models_fitted_feedback
                );
            }
            for model in &workspace.ranking_models {
                print_model(model, all);
            }
        }
    });
    Ok(())
}

fn print_model(model: &pb::RankingModel, all: bool) {
    if model.learned {
        println!(
            "  {} (version {}): learned from this workspace's history",
            model.kind, model.version
        );
    } else {
        println!("  {}: default ({})", model.kind, model.default_reason);
    }
    if let Some(training) = &model.training {
        println!(
            "    fitted on {} queries ({} candidates, {} of them taken up) over {} splits; L2 strength {}",
            training.queries,
            training.examples,
            training.positives,
            training.splits,
            training.regularisation
        );
        println!(
            "    held-back history ({} queries): {} {:.3}, against {:.3} for the model it replaced ({:.1} standard errors better)",
            training.validation_queries,
            training.metric,
            training.validated,
            training.replaced,
            training.gain_in_standard_errors
        );
        println!("    weights per standard deviation of each feature, strongest first:");
    } else {
        println!("    weights:");
    }
    let shown = if all { model.features.len() } else { 10 };
    for feature in model
        .features
        .iter()
        .filter(|feature| model.learned || feature.weight != 0.0)
        .take(shown)
    {
        println!("      {:<24} {:+.3}", feature.name, feature.weight);
    }
}
