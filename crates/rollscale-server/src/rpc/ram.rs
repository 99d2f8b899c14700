//! RAM 2015-05-01: users, AccessKeys, policies and their attachments, with RAM's parameter
//! names and response shapes; `ListAuditEvents` (a rollscale action under `ram`) reads the
//! audit log. (Every call of every product is authorized in `rpc/mod.rs` and audited by
//! `crate::audit`.)

use super::request::Params;
use super::{page, render, reply, required};
use crate::error::ApiError;
use crate::values;
use rollscale_client::wire::ram as wire;
use rollscale_core::access::{AuditFilter, Policy, User};
use rollscale_core::domain::AccessKey;
use rollscale_core::Code;
use rollscale_engine::access::{NewUser, PolicyInfo};
use rollscale_engine::Service;
use serde_json::{json, Value};

pub const VERSION: &str = "2015-05-01";

pub async fn dispatch(service: &Service, caller: &str, action: &str, params: &Params) -> Result<Value, ApiError> {
    match action {
        "CreateUser" => create_user(service, params).await,
        "GetUser" => {
            let user = user(&service.user(required(params, "UserName")?).await?);
            reply(&wire::UserReply { user, request_id: String::new() })
        }
        "ListUsers" => list_users(service, params).await,
        "DeleteUser" => {
            service.delete_user(required(params, "UserName")?).await?;
            Ok(json!({}))
        }
        "CreateAccessKey" => {
            let user_name = user_or_caller(service, caller, params).await?;
            let key = service.create_access_key(&user_name).await?;
            reply(&wire::AccessKeyReply { access_key: access_key(&key, true), request_id: String::new() })
        }
        "ListAccessKeys" => {
            let user_name = user_or_caller(service, caller, params).await?;
            let keys = service.access_keys(&user_name).await?;
            let access_key = keys.iter().map(|key| access_key(key, false)).collect();
            reply(&wire::ListAccessKeysReply {
                access_keys: wire::AccessKeys { access_key },
                request_id: String::new(),
            })
        }
        "UpdateAccessKey" => {
            let user_name = user_or_caller(service, caller, params).await?;
            let status = values::key_status(required(params, "Status")?, "Status")?;
            service.set_access_key_status(&user_name, required(params, "UserAccessKeyId")?, status).await?;
            Ok(json!({}))
        }
        "DeleteAccessKey" => {
            let user_name = user_or_caller(service, caller, params).await?;
            service.delete_access_key(&user_name, required(params, "UserAccessKeyId")?).await?;
            Ok(json!({}))
        }
        "CreatePolicy" => {
            let created = service
                .create_policy(
                    required(params, "PolicyName")?,
                    required(params, "PolicyDocument")?,
                    params.get("Description").unwrap_or(""),
                )
                .await?;
            let mut rendered = policy(&PolicyInfo { policy: created, attachment_count: 0 });
            if let Value::Object(map) = &mut rendered {
                map.remove("PolicyDocument");
                map.remove("AttachmentCount");
                map.remove("UpdateDate");
            }
            Ok(json!({ "Policy": rendered }))
        }
        "GetPolicy" => {
            let policy_type = values::policy_type(required(params, "PolicyType")?, "PolicyType")?;
            let info = service.policy(policy_type, required(params, "PolicyName")?).await?;
            Ok(json!({
                "Policy": policy(&info),
                "DefaultPolicyVersion": {
                    "VersionId": "v1",
                    "IsDefaultVersion": true,
                    "PolicyDocument": info.policy.document,
                    "CreateDate": render::date(Some(info.policy.created_at)),
                },
            }))
        }
        "ListPolicies" => list_policies(service, params).await,
        "DeletePolicy" => {
            service.delete_policy(required(params, "PolicyName")?).await?;
            Ok(json!({}))
        }
        "AttachPolicyToUser" | "DetachPolicyFromUser" => {
            let policy_type = values::policy_type(required(params, "PolicyType")?, "PolicyType")?;
            let (user_name, policy_name) = (required(params, "UserName")?, required(params, "PolicyName")?);
            match action {
                "AttachPolicyToUser" => service.attach_policy(user_name, policy_type, policy_name).await?,
                _ => service.detach_policy(user_name, policy_type, policy_name).await?,
            }
            Ok(json!({}))
        }
        "ListPoliciesForUser" => {
            let attached = service.user_policies(required(params, "UserName")?).await?;
            let policy = attached
                .iter()
                .map(|attachment| wire::AttachedPolicy {
                    policy_name: attachment.policy.name.clone(),
                    policy_type: attachment.policy.policy_type.into(),
                    description: attachment.policy.description.clone(),
                    default_version: "v1".into(),
                    attach_date: render::date(Some(attachment.attached_at)),
                })
                .collect();
            reply(&wire::ListPoliciesForUserReply {
                policies: wire::AttachedPolicies { policy },
                request_id: String::new(),
            })
        }
        "ListAuditEvents" => list_audit_events(service, params).await,
        other => Err(ApiError::new(Code::InvalidActionNotFound, format!("the RAM action {other} is not served"))),
    }
}

/// `UserName`, or the calling AccessKey's user (RAM's default for the AccessKey actions).
async fn user_or_caller(service: &Service, caller: &str, params: &Params) -> Result<String, ApiError> {
    match params.get_nonempty("UserName") {
        Some(name) => Ok(name.to_string()),
        None => Ok(service.access_key_user(caller).await?),
    }
}

fn user(user: &User) -> wire::User {
    wire::User {
        user_id: user.id.clone(),
        user_name: user.name.clone(),
        display_name: user.display_name.clone(),
        comments: user.comments.clone(),
        create_date: render::date(Some(user.created_at)),
        update_date: render::date(Some(user.updated_at)),
    }
}

/// A key; its secret only when it was just created.
fn access_key(key: &AccessKey, with_secret: bool) -> wire::AccessKey {
    wire::AccessKey {
        access_key_id: key.id.clone(),
        access_key_secret: with_secret.then(|| key.secret.clone()),
        status: key.status.into(),
        create_date: render::date(Some(key.created_at)),
    }
}

fn policy(info: &PolicyInfo) -> Value {
    let policy: &Policy = &info.policy;
    json!({
        "PolicyName": policy.name,
        "PolicyType": policy.policy_type.as_str(),
        "Description": policy.description,
        "DefaultVersion": "v1",
        "PolicyDocument": policy.document,
        "AttachmentCount": info.attachment_count,
        "CreateDate": render::date(Some(policy.created_at)),
        "UpdateDate": render::date(Some(policy.updated_at)),
    })
}

/// RAM pages with `Marker` and `MaxItems`; the marker is the offset of the next page.
fn marker_page(params: &Params, max: i64) -> Result<(i64, i64), ApiError> {
    let size = params.i64("MaxItems").map_err(ApiError::from)?.unwrap_or(100);
    if !(1..=max).contains(&size) {
        return Err(ApiError::new(Code::InvalidParameter, format!("MaxItems must be from 1 to {max}")));
    }
    let offset = match params.get_nonempty("Marker") {
        None => 0,
        Some(marker) => marker
            .parse::<i64>()
            .ok()
            .filter(|offset| *offset >= 0)
            .ok_or_else(|| ApiError::new(Code::InvalidParameter, "Marker is not a marker this service gave"))?,
    };
    Ok((offset, size))
}

async fn create_user(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let created = service
        .create_user(NewUser {
            name: required(params, "UserName")?.to_string(),
            display_name: params.get_nonempty("DisplayName").map(str::to_string),
            comments: params.get_nonempty("Comments").map(str::to_string),
        })
        .await?;
    reply(&wire::UserReply { user: user(&created), request_id: String::new() })
}

async fn list_users(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let (offset, size) = marker_page(params, 1000)?;
    // One more than asked says whether there is a next page.
    let mut users = service.users(offset, size + 1).await?;
    let truncated = users.len() as i64 > size;
    users.truncate(size as usize);
    reply(&wire::ListUsersReply {
        users: wire::Users { user: users.iter().map(user).collect() },
        is_truncated: truncated,
        marker: if truncated { (offset + size).to_string() } else { String::new() },
        request_id: String::new(),
    })
}

async fn list_policies(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let policy_type =
        params.get_nonempty("PolicyType").map(|text| values::policy_type(text, "PolicyType")).transpose()?;
    let (offset, size) = marker_page(params, 1000)?;
    let all = service.policies(policy_type).await?;
    let page: Vec<Value> = all.iter().skip(offset as usize).take(size as usize).map(policy).collect();
    let truncated = (offset + size) < all.len() as i64;
    let mut reply = json!({ "Policies": { "Policy": page }, "IsTruncated": truncated });
    if truncated {
        reply["Marker"] = Value::String((offset + size).to_string());
    }
    Ok(reply)
}

/// Parses `2026-01-02T03:04:05Z` (or any RFC 3339 time) to milliseconds.
fn time_param(params: &Params, name: &str) -> Result<Option<i64>, ApiError> {
    params
        .get_nonempty(name)
        .map(|text| {
            chrono::DateTime::parse_from_rfc3339(text).map(|t| t.timestamp_millis()).map_err(|_| {
                ApiError::new(Code::InvalidParameter, format!("{name} must be a time like 2026-01-02T03:04:05Z"))
            })
        })
        .transpose()
}

/// `ListAuditEvents` (rollscale's): the audit log, newest first. Filters `UserName`,
/// `UserAccessKeyId`, `EventAction` (`product:Action`), `ResultCode`, `StartTime`, `EndTime`;
/// pages with `NextToken` and `MaxResults` (1 to 100, default 50).
async fn list_audit_events(service: &Service, params: &Params) -> Result<Value, ApiError> {
    let (offset, limit) = page(params, "MaxResults", 50, 100)?;
    let filter = AuditFilter {
        user_name: params.get_nonempty("UserName").map(str::to_string),
        access_key_id: params.get_nonempty("UserAccessKeyId").map(str::to_string),
        action: params.get_nonempty("EventAction").map(str::to_string),
        result_code: params.get_nonempty("ResultCode").map(str::to_string),
        since: time_param(params, "StartTime")?,
        until: time_param(params, "EndTime")?,
    };
    let (events, total) = service.audit_events(&filter, offset, limit).await?;
    let next = offset + events.len() as i64;
    let items: Vec<Value> = events
        .iter()
        .map(|event| {
            json!({
                "EventId": event.id,
                "EventTime": render::date(Some(event.at)),
                "UserName": event.user_name,
                "AccessKeyId": event.access_key_id,
                "EventAction": event.action,
                "Resource": event.resource,
                "SourceIpAddress": event.source_ip,
                "ResultCode": event.result_code,
                "HttpStatus": event.http_status,
                "RequestId": event.request_id,
                "RequestParameters": event.request,
            })
        })
        .collect();
    let mut reply = json!({ "AuditEvents": items, "TotalCount": total, "MaxResults": limit });
    if next < total {
        reply["NextToken"] = Value::String(next.to_string());
    }
    Ok(reply)
}
