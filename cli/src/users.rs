//! `pz user …` and `pz token …`: the users and API tokens of `pz serve`, in the metadata
//! database (SQLite in the data directory unless `--database-url` names another).

use std::path::PathBuf;
use std::time::Duration;

use pz_catalogs::store::MetadataStore;

use crate::error::CliError;

#[derive(clap::Subcommand, Debug)]
pub enum UserCommand {
    /// Add a user.
    Add {
        name: String,
        /// May change what is served (DDL, COPY, CREATE MODEL, ingest).
        #[arg(long)]
        admin: bool,
        /// A group the user belongs to (repeatable).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
    },
    /// List the users.
    List,
}

#[derive(clap::Subcommand, Debug)]
pub enum TokenCommand {
    /// Make an API token for a user; it is printed once (only a hash is kept).
    Create {
        name: String,
        /// How long it is valid: e.g. 30d, 12h, 90m, 3600s (default: until revoked).
        #[arg(long, value_name = "DURATION", value_parser = parse_lifetime)]
        expires: Option<Duration>,
    },
    /// Revoke a token, by its id (as `pz token list` shows it) or its whole text.
    Revoke { token: String },
    /// List a user's tokens (ids, not the tokens themselves).
    List { name: String },
}

/// `30d`, `12h`, `90m`, `45s`, `2w`.
pub fn parse_lifetime(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("'{s}' needs a unit: s, m, h, d or w (e.g. 30d)"))?;
    let (n, unit) = s.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("'{s}' is not a duration such as 30d, 12h or 90m"))?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("'{s}': the unit must be s, m, h, d or w")),
    };
    if n == 0 {
        return Err(format!("'{s}': a token must be valid for some time"));
    }
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{s}' is too long"))
}

pub(crate) async fn store(
    data_dir: &Option<PathBuf>,
    url: &Option<String>,
) -> Result<MetadataStore, CliError> {
    let dir = crate::resolve_data_dir(data_dir)?;
    MetadataStore::open_for(&dir, url.as_deref())
        .await
        .map_err(|e| CliError::Usage(e.to_string()))
}

fn when(unix: Option<i64>) -> String {
    unix.map(|u| u.to_string()).unwrap_or_else(|| "-".into())
}

pub async fn run_user(
    cmd: &UserCommand,
    data_dir: &Option<PathBuf>,
    url: &Option<String>,
) -> Result<(), CliError> {
    let store = store(data_dir, url).await?;
    match cmd {
        UserCommand::Add {
            name,
            admin,
            groups,
        } => {
            let u = store
                .add_user(name, *admin, groups)
                .await
                .map_err(|e| CliError::Usage(e.to_string()))?;
            println!(
                "added user {}{}{}",
                u.name,
                if u.admin { " (admin)" } else { "" },
                if u.groups.is_empty() {
                    String::new()
                } else {
                    format!(" in {}", u.groups.join(", "))
                }
            );
        }
        UserCommand::List => {
            println!("user,admin,groups,created_unix");
            for u in store
                .users()
                .await
                .map_err(|e| CliError::Usage(e.to_string()))?
            {
                println!(
                    "{},{},{},{}",
                    u.name,
                    u.admin,
                    u.groups.join(";"),
                    u.created_unix
                );
            }
        }
    }
    Ok(())
}

pub async fn run_token(
    cmd: &TokenCommand,
    data_dir: &Option<PathBuf>,
    url: &Option<String>,
) -> Result<(), CliError> {
    let store = store(data_dir, url).await?;
    let usage = |e: pz_catalogs::store::StoreError| CliError::Usage(e.to_string());
    match cmd {
        TokenCommand::Create { name, expires } => {
            let t = store.create_token(name, *expires).await.map_err(usage)?;
            // The token itself on stdout, alone, so scripts can capture it.
            println!("{}", t.text);
            eprintln!(
                "token {} for user {} ({}); it is shown only now",
                t.id,
                t.user,
                match t.expires_unix {
                    Some(e) => format!("expires at unix time {e}"),
                    None => "valid until revoked".into(),
                }
            );
        }
        TokenCommand::Revoke { token } => {
            let t = store.revoke_token(token).await.map_err(usage)?;
            println!("revoked token {} of user {}", t.id, t.user);
        }
        TokenCommand::List { name } => {
            println!("token_id,user,created_unix,expires_unix,revoked_unix");
            for t in store.tokens_of(name).await.map_err(usage)? {
                println!(
                    "{},{},{},{},{}",
                    t.id,
                    t.user,
                    t.created_unix,
                    when(t.expires_unix),
                    when(t.revoked_unix)
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_read_as_people_write_them() {
        assert_eq!(parse_lifetime("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_lifetime("90m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_lifetime("2w"), Ok(Duration::from_secs(14 * 86_400)));
        for bad in [
            "30",
            "d",
            "0d",
            "5y",
            "-1d",
            "1.5h",
            "99999999999999999999w",
        ] {
            assert!(parse_lifetime(bad).is_err(), "{bad}");
        }
    }
}
