//! `patron keys create|list|revoke`: the API keys of a tenant. A key is shown once, when it is
//! created; the database keeps only its hash.

use std::process::ExitCode;

use clap::builder::PossibleValuesParser;
use clap::{Args, Subcommand};
use patron_engine::keys::Scope;

use crate::settings::Settings;
use crate::store::{default_actor, open, tenant};

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create an API key; the key is printed alone on the last line of stdout, once
    #[command(
        after_help = "Scopes: admin (everything), pos (purchases, refunds, member look-up and enrollment,\ncoupons), read (GET only).\n\nExample:\n  KEY=$(patron keys create --tenant demo --scope pos --name \"till 3\" | tail -n 1)"
    )]
    Create(CreateArgs),
    /// List a tenant's API keys (never the secrets)
    #[command(after_help = "Example:\n  patron keys list --tenant demo")]
    List(ListArgs),
    /// Revoke an API key by its id (from `patron keys list`)
    #[command(after_help = "Example:\n  patron keys revoke --tenant demo 3")]
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The tenant (club) name
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// What the key may do
    #[arg(long, value_name = "SCOPE", value_parser = PossibleValuesParser::new(["admin", "pos", "read"]))]
    pub scope: String,
    /// A name to recognise the key by [default: "SCOPE key"]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Who is acting, for the audit log [default: the login name]
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// The tenant (club) name
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The tenant (club) name
    #[arg(long, value_name = "NAME")]
    pub tenant: String,
    /// The key's id
    #[arg(value_name = "ID")]
    pub id: i64,
    /// Who is acting, for the audit log [default: the login name]
    #[arg(long, value_name = "NAME")]
    pub actor: Option<String>,
}

pub async fn run(settings: &Settings, command: KeysCommand) -> anyhow::Result<ExitCode> {
    let engine = open(settings).await?;
    match command {
        KeysCommand::Create(args) => {
            let tenant = tenant(&engine, &args.tenant).await?;
            let scope = Scope::parse(&args.scope).ok_or_else(|| {
                anyhow::anyhow!("unknown scope {:?}; use admin, pos or read", args.scope)
            })?;
            let name = args
                .name
                .unwrap_or_else(|| format!("{} key", scope.as_str()));
            let actor = args.actor.unwrap_or_else(default_actor);
            let (key, secret) = engine.create_api_key(&tenant, scope, &name, &actor).await?;
            eprintln!(
                "created API key {} {:?} for tenant {} with scope {}; it is shown only now:",
                key.id, key.name, tenant.name, key.scope
            );
            println!("{secret}");
        }
        KeysCommand::List(args) => {
            let tenant = tenant(&engine, &args.tenant).await?;
            let keys = engine.api_keys(&tenant).await?;
            if keys.is_empty() {
                println!(
                    "tenant {} has no API keys; create one with: patron keys create --tenant {} --scope admin",
                    tenant.name, tenant.name
                );
                return Ok(ExitCode::SUCCESS);
            }
            let mut rows = vec![[
                "ID".to_string(),
                "NAME".into(),
                "PREFIX".into(),
                "SCOPE".into(),
                "CREATED".into(),
                "REVOKED".into(),
            ]];
            let time = |t: jiff::Timestamp| t.strftime("%Y-%m-%d %H:%M UTC").to_string();
            for key in &keys {
                rows.push([
                    key.id.to_string(),
                    key.name.clone(),
                    format!("{}…", key.prefix),
                    key.scope.clone(),
                    time(key.created_at),
                    key.revoked_at.map_or_else(|| "-".to_string(), time),
                ]);
            }
            let widths: Vec<usize> = (0..6)
                .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
                .collect();
            for row in &rows {
                let line: Vec<String> = row
                    .iter()
                    .zip(&widths)
                    .map(|(cell, width)| format!("{cell:<width$}"))
                    .collect();
                println!("{}", line.join("  ").trim_end());
            }
        }
        KeysCommand::Revoke(args) => {
            let tenant = tenant(&engine, &args.tenant).await?;
            let actor = args.actor.unwrap_or_else(default_actor);
            let revoked = engine.revoke_api_key(&tenant, args.id, &actor).await?;
            if !revoked {
                eprintln!(
                    "error: tenant {} has no live API key {} (`patron keys list --tenant {}` shows them)",
                    tenant.name, args.id, tenant.name
                );
                return Ok(ExitCode::FAILURE);
            }
            println!("revoked API key {} of tenant {}", args.id, tenant.name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
