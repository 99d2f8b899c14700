//! RAM 2015-05-01's users, AccessKeys and a user's policies as the wire has them (RAM's names;
//! a list wrapped in an object named by its element, `{"Users": {"User": […]}}`), and the
//! replies of the actions a client reads: `CreateUser` and `GetUser`, `ListUsers`,
//! `CreateAccessKey`, `ListAccessKeys`, `ListPoliciesForUser`. The server renders them with
//! these types; read leniently, as the rest of [`super`].

use rollscale_core::domain::AccessKeyStatus as CoreKeyStatus;
use rollscale_core::policy::PolicyType as CorePolicyType;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

text_enum!(
    /// Whether an AccessKey signs requests.
    AccessKeyStatus { Active, Inactive } else Other
);

impl From<CoreKeyStatus> for AccessKeyStatus {
    fn from(status: CoreKeyStatus) -> Self {
        AccessKeyStatus::parse(status.as_str())
    }
}

text_enum!(
    /// A built-in policy or one made with `CreatePolicy`.
    PolicyType { System, Custom } else Other
);

impl From<CorePolicyType> for PolicyType {
    fn from(policy_type: CorePolicyType) -> Self {
        PolicyType::parse(policy_type.as_str())
    }
}

/// A RAM user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct User {
    #[serde(deserialize_with = "super::lenient::text")]
    pub user_id: String,
    #[serde(deserialize_with = "super::lenient::text")]
    pub user_name: String,
    #[serde(deserialize_with = "super::lenient::text")]
    pub display_name: String,
    #[serde(deserialize_with = "super::lenient::text")]
    pub comments: String,
    #[serde(deserialize_with = "super::lenient::text")]
    pub create_date: String,
    #[serde(deserialize_with = "super::lenient::text")]
    pub update_date: String,
}

/// An AccessKey: its secret only in `CreateAccessKey`'s answer (`Debug` never shows it).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AccessKey {
    #[serde(deserialize_with = "super::lenient::text")]
    pub access_key_id: String,
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "super::lenient::opt_text")]
    pub access_key_secret: Option<String>,
    pub status: AccessKeyStatus,
    #[serde(deserialize_with = "super::lenient::text")]
    pub create_date: String,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &self.access_key_secret.as_deref().map(crate::redact))
            .field("status", &self.status)
            .field("create_date", &self.create_date)
            .finish()
    }
}

/// A policy attached to a user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AttachedPolicy {
    #[serde(deserialize_with = "super::lenient::text")]
    pub policy_name: String,
    pub policy_type: PolicyType,
    #[serde(deserialize_with = "super::lenient::text")]
    pub description: String,
    #[serde(deserialize_with = "super::lenient::text")]
    pub default_version: String,
    #[serde(deserialize_with = "super::lenient::text")]
    pub attach_date: String,
}

/// `CreateUser`'s and `GetUser`'s answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UserReply {
    #[serde(deserialize_with = "super::lenient::or_default")]
    pub user: User,
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "super::lenient::text")]
    pub request_id: String,
}

/// `ListUsers`' answer: a page of users, read as [`User`]s or, for a client that shows the
/// server's JSON as it came, as JSON values (`ListUsersReply<Value>`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
#[serde(bound(serialize = "U: Serialize", deserialize = "U: DeserializeOwned + Default"))]
pub struct ListUsersReply<U = User> {
    #[serde(deserialize_with = "super::lenient::or_default")]
    pub users: Users<U>,
    #[serde(deserialize_with = "super::lenient::flag")]
    pub is_truncated: bool,
    /// The next page's marker; "" (and not written) on the last page.
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "super::lenient::text")]
    pub marker: String,
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "super::lenient::text")]
    pub request_id: String,
}

/// `{"User": […]}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[serde(bound(serialize = "U: Serialize", deserialize = "U: DeserializeOwned + Default"))]
pub struct Users<U = User> {
    #[serde(rename = "User", deserialize_with = "super::lenient::list")]
    pub user: Vec<U>,
}

/// `CreateAccessKey`'s answer, with the key's secret.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AccessKeyReply {
    #[serde(deserialize_with = "super::lenient::or_default")]
    pub access_key: AccessKey,
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "super::lenient::text")]
    pub request_id: String,
}

/// `ListAccessKeys`' answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListAccessKeysReply {
    #[serde(deserialize_with = "super::lenient::or_default")]
    pub access_keys: AccessKeys,
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "super::lenient::text")]
    pub request_id: String,
}

/// `{"AccessKey": […]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccessKeys {
    #[serde(rename = "AccessKey", deserialize_with = "super::lenient::list")]
    pub access_key: Vec<AccessKey>,
}

/// `ListPoliciesForUser`'s answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListPoliciesForUserReply {
    #[serde(deserialize_with = "super::lenient::or_default")]
    pub policies: AttachedPolicies,
    #[serde(skip_serializing_if = "String::is_empty", deserialize_with = "super::lenient::text")]
    pub request_id: String,
}

/// `{"Policy": […]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AttachedPolicies {
    #[serde(rename = "Policy", deserialize_with = "super::lenient::list")]
    pub policy: Vec<AttachedPolicy>,
}

/// Reads a reply leniently: the default when it is no object.
pub fn read<T: DeserializeOwned + Default>(value: &Value) -> T {
    T::deserialize(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replies_are_written_as_ram_has_them_and_read_back_leniently() {
        let created = AccessKeyReply {
            access_key: AccessKey {
                access_key_id: "LTAI1".into(),
                access_key_secret: Some("a-long-enough-secret".into()),
                status: AccessKeyStatus::Active,
                create_date: "2026-01-02T03:04:05Z".into(),
            },
            request_id: String::new(),
        };
        let written = serde_json::to_value(&created).unwrap();
        assert_eq!(
            written,
            json!({"AccessKey": {"AccessKeyId": "LTAI1", "AccessKeySecret": "a-long-enough-secret",
                                 "Status": "Active", "CreateDate": "2026-01-02T03:04:05Z"}})
        );
        assert_eq!(read::<AccessKeyReply>(&written), created);
        assert!(!format!("{created:?}").contains("a-long-enough-secret"));
        let listed = ListAccessKeysReply {
            access_keys: AccessKeys { access_key: vec![AccessKey { access_key_secret: None, ..created.access_key }] },
            request_id: String::new(),
        };
        let written = serde_json::to_value(&listed).unwrap();
        assert_eq!(written["AccessKeys"]["AccessKey"][0].get("AccessKeySecret"), None);
        assert_eq!(read::<ListAccessKeysReply>(&written), listed);

        let users: ListUsersReply = read(&json!({
            "Users": {"User": [{"UserName": "ops", "UserId": 12}, 3]}, "IsTruncated": true, "Marker": "100"
        }));
        assert_eq!((users.users.user.len(), users.users.user[0].user_id.as_str()), (1, "12"));
        assert_eq!((users.is_truncated, users.marker.as_str()), (true, "100"));
        let last = serde_json::to_value(ListUsersReply::<User> { is_truncated: false, ..Default::default() }).unwrap();
        assert_eq!(last, json!({"Users": {"User": []}, "IsTruncated": false}));
        let policies: ListPoliciesForUserReply =
            read(&json!({"Policies": {"Policy": [{"PolicyName": "ReadOnlyAccess", "PolicyType": "System"}]}}));
        assert_eq!(policies.policies.policy[0].policy_type, PolicyType::System);
        assert_eq!(read::<UserReply>(&json!(null)), UserReply::default());
    }
}
