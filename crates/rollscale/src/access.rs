//! Users and AccessKeys from the command line: `rollscale user create|list|delete` and
//! `rollscale key create|list|disable|enable|delete`, each a RAM call (2015-05-01) through
//! the signed RPC API, with tables or `-o json`.

use crate::rolling::{render_table, OutputFormat};
use crate::EXIT_OK;
use clap::{Args, Subcommand};
use rollscale_client::rpc::{Client, RAM_VERSION};
use rollscale_client::wire::ram::{
    read, AccessKeyReply, ListAccessKeysReply, ListPoliciesForUserReply, ListUsersReply, User, UserReply, Users,
};
use serde_json::Value;

/// `rollscale user`: RAM users.
#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    pub command: UserCommand,
    /// Output format: a human table, or the API's JSON.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (it can do nothing until a policy is attached).
    Create {
        name: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long)]
        comments: Option<String>,
    },
    /// List users.
    List,
    /// Delete a user, with its AccessKeys and policy attachments.
    Delete { name: String },
    /// Attach a policy to a user (`--type Custom` for one made with CreatePolicy).
    Attach {
        name: String,
        policy: String,
        #[arg(long = "type", default_value = "System")]
        policy_type: String,
    },
    /// Detach a policy from a user.
    Detach {
        name: String,
        policy: String,
        #[arg(long = "type", default_value = "System")]
        policy_type: String,
    },
    /// The policies attached to a user.
    Policies { name: String },
}

/// `rollscale key`: AccessKeys.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
    /// Output format: a human table, or the API's JSON.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
    /// Whose keys (default: the profile's own user).
    #[arg(long, global = true)]
    pub user: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create an AccessKey; its secret is shown this once.
    Create,
    /// List AccessKeys (never their secrets).
    List,
    /// Disable an AccessKey: requests signed with it are refused.
    Disable { id: String },
    /// Enable a disabled AccessKey.
    Enable { id: String },
    /// Delete an AccessKey.
    Delete { id: String },
}

fn connect() -> anyhow::Result<Client> {
    crate::profile::client(&crate::profile::load()?)
}

async fn call(client: &Client, action: &str, params: &[(&str, &str)]) -> anyhow::Result<Value> {
    let params = params.iter().filter(|(_, v)| !v.is_empty()).map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Ok(client.call(RAM_VERSION, action, params).await?)
}

fn print_json(value: &Value) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A value to show, "-" when empty.
fn text(value: &str) -> String {
    if value.is_empty() {
        "-".to_string()
    } else {
        value.to_string()
    }
}

pub async fn run_user(args: UserArgs) -> anyhow::Result<u8> {
    let client = connect()?;
    let json = args.output == OutputFormat::Json;
    let attach = matches!(args.command, UserCommand::Attach { .. });
    match args.command {
        UserCommand::Create { name, display_name, comments } => {
            let reply = call(
                &client,
                "CreateUser",
                &[
                    ("UserName", &name),
                    ("DisplayName", display_name.as_deref().unwrap_or("")),
                    ("Comments", comments.as_deref().unwrap_or("")),
                ],
            )
            .await?;
            match json {
                true => print_json(&reply)?,
                false => outln!("Created the user {} ({}).", name, text(&read::<UserReply>(&reply).user.user_id)),
            }
        }
        UserCommand::List => {
            // The users as the server sent them, every page's, shown as one page.
            let mut users: Vec<Value> = Vec::new();
            let mut marker = String::new();
            let request_id = loop {
                let reply = call(&client, "ListUsers", &[("MaxItems", "1000"), ("Marker", &marker)]).await?;
                let page: ListUsersReply<Value> = read(&reply);
                users.extend(page.users.user);
                marker = page.marker;
                if !page.is_truncated || marker.is_empty() {
                    break page.request_id;
                }
            };
            if json {
                let all = ListUsersReply { users: Users { user: users }, request_id, ..Default::default() };
                return print_json(&serde_json::to_value(all)?).map(|()| EXIT_OK);
            }
            let rows: Vec<Vec<String>> = users
                .iter()
                .map(read::<User>)
                .map(|u| vec![text(&u.user_name), text(&u.user_id), text(&u.display_name), text(&u.create_date)])
                .collect();
            out!("{}", render_table(&["USER", "ID", "DISPLAY NAME", "CREATED"], &rows));
        }
        UserCommand::Delete { name } => {
            let reply = call(&client, "DeleteUser", &[("UserName", &name)]).await?;
            match json {
                true => print_json(&reply)?,
                false => outln!("Deleted the user {name}, its AccessKeys and its policy attachments."),
            }
        }
        UserCommand::Attach { name, policy, policy_type } | UserCommand::Detach { name, policy, policy_type } => {
            let action = if attach { "AttachPolicyToUser" } else { "DetachPolicyFromUser" };
            let reply =
                call(&client, action, &[("UserName", &name), ("PolicyName", &policy), ("PolicyType", &policy_type)])
                    .await?;
            match (json, attach) {
                (true, _) => print_json(&reply)?,
                (false, true) => outln!("Attached the {policy_type} policy {policy} to {name}."),
                (false, false) => outln!("Detached the {policy_type} policy {policy} from {name}."),
            }
        }
        UserCommand::Policies { name } => {
            let reply = call(&client, "ListPoliciesForUser", &[("UserName", &name)]).await?;
            if json {
                return print_json(&reply).map(|()| EXIT_OK);
            }
            let rows: Vec<Vec<String>> = read::<ListPoliciesForUserReply>(&reply)
                .policies
                .policy
                .into_iter()
                .map(|p| {
                    vec![text(&p.policy_name), text(p.policy_type.as_str()), text(&p.attach_date), text(&p.description)]
                })
                .collect();
            out!("{}", render_table(&["POLICY", "TYPE", "ATTACHED", "DESCRIPTION"], &rows));
        }
    }
    Ok(EXIT_OK)
}

pub async fn run_key(args: KeyArgs) -> anyhow::Result<u8> {
    let client = connect()?;
    let json = args.output == OutputFormat::Json;
    let user = args.user.unwrap_or_default();
    match args.command {
        KeyCommand::Create => {
            let reply = call(&client, "CreateAccessKey", &[("UserName", &user)]).await?;
            if json {
                return print_json(&reply).map(|()| EXIT_OK);
            }
            let key = read::<AccessKeyReply>(&reply).access_key;
            // Shown once, to the terminal only.
            outln!("AccessKeyId      {}", text(&key.access_key_id));
            outln!("AccessKeySecret  {}", text(key.access_key_secret.as_deref().unwrap_or_default()));
            outln!("The secret is shown this once: keep it now (e.g. `rollscale configure --access-key-id … --access-key-secret …`).");
        }
        KeyCommand::List => {
            let reply = call(&client, "ListAccessKeys", &[("UserName", &user)]).await?;
            if json {
                return print_json(&reply).map(|()| EXIT_OK);
            }
            let rows: Vec<Vec<String>> = read::<ListAccessKeysReply>(&reply)
                .access_keys
                .access_key
                .into_iter()
                .map(|k| vec![text(&k.access_key_id), text(k.status.as_str()), text(&k.create_date)])
                .collect();
            out!("{}", render_table(&["ACCESS KEY", "STATUS", "CREATED"], &rows));
        }
        KeyCommand::Disable { ref id } | KeyCommand::Enable { ref id } => {
            let status = if matches!(args.command, KeyCommand::Disable { .. }) { "Inactive" } else { "Active" };
            let reply =
                call(&client, "UpdateAccessKey", &[("UserName", &user), ("UserAccessKeyId", id), ("Status", status)])
                    .await?;
            match json {
                true => print_json(&reply)?,
                false => outln!("The AccessKey {id} is {status} now."),
            }
        }
        KeyCommand::Delete { id } => {
            let reply = call(&client, "DeleteAccessKey", &[("UserName", &user), ("UserAccessKeyId", &id)]).await?;
            match json {
                true => print_json(&reply)?,
                false => outln!("Deleted the AccessKey {id}."),
            }
        }
    }
    Ok(EXIT_OK)
}
