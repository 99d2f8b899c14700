//! The generic API caller: `rollscale <product> <Action> --Name value …`, as `aliyun` takes it.
//!
//! API parameters are PascalCase flags (`--ScalingGroupId asg-…`, `--InstanceId.1 i-…`);
//! lower-case flags are options of rollscale itself (`--version`, `--endpoint`, `--region`).
//! The reply is printed as pretty JSON.

use crate::UsageError;
use rollscale_client::rpc::default_version;

/// A product whose API rollscale serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Product {
    Oos,
    Ess,
    Ecs,
    Ram,
    Cms,
}

impl Product {
    pub fn parse(name: &str) -> Option<Product> {
        match name.to_ascii_lowercase().as_str() {
            "oos" => Some(Product::Oos),
            "ess" => Some(Product::Ess),
            "ecs" => Some(Product::Ecs),
            "ram" => Some(Product::Ram),
            "cms" => Some(Product::Cms),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Product::Oos => "oos",
            Product::Ess => "ess",
            Product::Ecs => "ecs",
            Product::Ram => "ram",
            Product::Cms => "cms",
        }
    }

    pub fn default_version(self) -> &'static str {
        default_version(self.name()).unwrap_or_default()
    }

    /// Some actions, for the help text (the server decides what it serves).
    fn example_actions(self) -> &'static str {
        match self {
            Product::Oos => "StartExecution, ListExecutions, ListTaskExecutions, NotifyExecution, CancelExecution",
            Product::Ess => {
                "CreateScalingGroup, DescribeScalingGroups, EnableScalingGroup, CreateScalingConfiguration, \
                 DescribeScalingConfigurations, DescribeScalingInstances, EnterStandby, ExitStandby, \
                 SuspendProcesses, ResumeProcesses, DescribeScalingActivities, …"
            }
            Product::Ecs => {
                "CreateLaunchTemplate, CreateLaunchTemplateVersion, ModifyLaunchTemplateDefaultVersion, \
                 DescribeLaunchTemplates, DescribeLaunchTemplateVersions, CreateImage, DescribeImages, DeleteImage"
            }
            Product::Ram => {
                "CreateUser, ListUsers, DeleteUser, CreateAccessKey, ListAccessKeys, UpdateAccessKey, \
                 DeleteAccessKey, CreatePolicy, ListPolicies, AttachPolicyToUser, DetachPolicyFromUser, \
                 ListPoliciesForUser, ListAuditEvents, …"
            }
            Product::Cms => {
                "PutEventRule, PutEventRuleTargets, DescribeEventRuleList, DescribeEventRuleAttribute, \
                 DescribeEventRuleTargetList, EnableEventRules, DisableEventRules, DeleteEventRuleTargets, \
                 DeleteEventRules, DescribeEventRuleDeliveries"
            }
        }
    }
}

/// Parameters the client sets itself; a caller giving them would break the signature.
const RESERVED: &[&str] = &[
    "Action",
    "Version",
    "Format",
    "AccessKeyId",
    "Signature",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureNonce",
    "SignatureType",
    "Timestamp",
];

/// One API call as given on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub product: Product,
    pub action: String,
    pub version: String,
    /// Wire parameters in the order given, lists flattened to `Name.N`.
    pub params: Vec<(String, String)>,
    /// `--endpoint`: call this URL instead of the profile's.
    pub endpoint: Option<String>,
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    Call(Invocation),
    Help(String),
}

fn products_hint() -> String {
    format!(
        "products: oos (CloudOps Orchestration, {}), ess (Auto Scaling, {})",
        Product::Oos.default_version(),
        Product::Ess.default_version()
    )
}

/// The help of `rollscale <product> --help`.
pub fn product_help(product: Option<Product>) -> String {
    let products: Vec<Product> = match product {
        Some(product) => vec![product],
        None => vec![Product::Oos, Product::Ess],
    };
    let mut text = String::from(
        "Call an API action, as `aliyun <product> <Action>` does.\n\n\
         Usage: rollscale <product> <Action> [--Name value | --Name=value]... [--version V] [--endpoint URL] [--region R]\n\n",
    );
    for product in products {
        text.push_str(&format!(
            "  {} (version {}): {}\n",
            product.name(),
            product.default_version(),
            product.example_actions()
        ));
    }
    text.push_str(
        "\nParameters are the API's own names: --ScalingGroupId asg-…, --Parameters '{\"invokeType\":\"invoke\",…}'.\n\
         A list is --InstanceId.1 i-a --InstanceId.2 i-b, or the same flag repeated: --InstanceId i-a --InstanceId i-b.\n\n\
         Options:\n  \
         --version V      API version (e.g. 2022-02-22 for ESS's newer API)\n  \
         --endpoint URL   call this rollscale server instead of the profile's\n  \
         --region R       RegionId to send instead of the profile's\n\n\
         The reply is printed as JSON. Exit status: 0 success, 1 API error, 2 usage error.\n\n\
         Examples:\n  \
         rollscale oos ListExecutions --ExecutionId exec-40e2e17ef7e04\n  \
         rollscale ess DescribeScalingInstances --ScalingGroupId asg-bp18p2yfxow2dloq --InstanceId.1 i-abc\n  \
         rollscale ess DescribeScalingGroups --version 2022-02-22 --ScalingGroupIds.1 asg-bp18p2yfxow2dloq\n",
    );
    text
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

/// Reads `<product> <Action> --Name value …` (the arguments after `rollscale`).
pub fn parse(args: &[String]) -> Result<Parsed, UsageError> {
    let Some(product_name) = args.first() else {
        return Err(UsageError::new(format!("missing the product; {}", products_hint())));
    };
    let product = Product::parse(product_name).ok_or_else(|| {
        UsageError::new(format!(
            "unknown command or product `{product_name}`: the commands are up, configure and \
             rolling-update (ru); the {}. To check the profile, try `rollscale ess DescribeScalingGroups`",
            products_hint()
        ))
    })?;
    let action = match args.get(1).map(String::as_str) {
        None => {
            return Err(UsageError::new(format!(
                "missing the action: rollscale {} <Action> [--Name value]...; e.g. {}",
                product.name(),
                product.example_actions()
            )))
        }
        Some("--help" | "-h" | "help") => return Ok(Parsed::Help(product_help(Some(product)))),
        Some(action) if action.starts_with('-') => {
            return Err(UsageError::new(format!(
                "give the action before the parameters: rollscale {} <Action> {action} …",
                product.name()
            )))
        }
        Some(action) if action.bytes().all(|b| b.is_ascii_alphanumeric()) => action.to_string(),
        Some(action) => return Err(UsageError::new(format!("`{action}` is not an action name"))),
    };

    let mut version: Option<String> = None;
    let mut endpoint: Option<String> = None;
    let mut region: Option<String> = None;
    // Names in the order first given, with every value given for each.
    let mut given: Vec<(String, Vec<String>)> = Vec::new();
    let mut rest = args[2..].iter();
    while let Some(arg) = rest.next() {
        if arg == "--help" || arg == "-h" {
            return Ok(Parsed::Help(product_help(Some(product))));
        }
        let Some(flag) = arg.strip_prefix("--") else {
            return Err(UsageError::new(format!("unexpected argument `{arg}`: parameters are given as --Name value")));
        };
        let (name, inline_value) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (flag, None),
        };
        if !valid_name(name) {
            return Err(UsageError::new(format!("`{arg}` is not a parameter name")));
        }
        let value = match inline_value {
            Some(value) => value,
            None => match rest.next() {
                Some(value) if !(value.starts_with("--") && value.len() > 2) => value.clone(),
                _ => {
                    return Err(UsageError::new(format!(
                        "missing the value of --{name} (write --{name} VALUE, or --{name}= for an empty value)"
                    )))
                }
            },
        };
        if name.starts_with(|c: char| c.is_ascii_lowercase()) {
            let slot = match name {
                "version" => &mut version,
                "endpoint" => &mut endpoint,
                "region" | "region-id" => &mut region,
                other => {
                    return Err(UsageError::new(format!(
                        "unknown option --{other}; rollscale's own options are --version, --endpoint and --region, \
                         and API parameters are PascalCase (e.g. --ScalingGroupId)"
                    )))
                }
            };
            if slot.replace(value).is_some() {
                return Err(UsageError::new(format!("--{name} is given twice")));
            }
            continue;
        }
        if RESERVED.contains(&name) {
            let hint = if name == "Version" { " (use --version to choose the API version)" } else { "" };
            return Err(UsageError::new(format!("--{name} is set by rollscale itself{hint}")));
        }
        match given.iter_mut().find(|(known, _)| known == name) {
            Some((_, values)) => values.push(value),
            None => given.push((name.to_string(), vec![value])),
        }
    }

    let mut params: Vec<(String, String)> = Vec::new();
    for (name, values) in given {
        let numbered =
            name.rsplit_once('.').is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if values.len() > 1 && numbered {
            return Err(UsageError::new(format!("the parameter {name} is given twice")));
        }
        if values.len() == 1 {
            params.extend(values.into_iter().map(|value| (name.clone(), value)));
        } else {
            params
                .extend(values.into_iter().enumerate().map(|(index, value)| (format!("{name}.{}", index + 1), value)));
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (name, _) in &params {
        if !seen.insert(name.as_str()) {
            return Err(UsageError::new(format!("the parameter {name} is given twice")));
        }
    }
    if let Some(region) = region {
        if !params.iter().any(|(name, _)| name == "RegionId") {
            params.push(("RegionId".into(), region));
        }
    }
    Ok(Parsed::Call(Invocation {
        product,
        version: version.unwrap_or_else(|| product.default_version().to_string()),
        action,
        params,
        endpoint,
    }))
}

/// Runs `rollscale <product> <Action> …`: prints the reply's JSON on stdout. An API error is
/// returned as [`rollscale_client::rpc::ApiError`], a bad command line as [`UsageError`].
pub async fn run(args: Vec<String>) -> anyhow::Result<()> {
    let invocation = match parse(&args)? {
        Parsed::Help(text) => {
            out!("{text}");
            return Ok(());
        }
        Parsed::Call(invocation) => invocation,
    };
    let mut profile = crate::profile::load()?;
    if let Some(endpoint) = &invocation.endpoint {
        profile.endpoint = endpoint.clone();
    }
    let client = crate::profile::client(&profile)?;
    let reply = client.call(&invocation.version, &invocation.action, invocation.params).await?;
    outln!("{}", serde_json::to_string_pretty(&reply)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &[&str]) -> Vec<String> {
        text.iter().map(|s| s.to_string()).collect()
    }

    fn call(text: &[&str]) -> Invocation {
        match parse(&args(text)).unwrap() {
            Parsed::Call(invocation) => invocation,
            Parsed::Help(_) => panic!("expected a call"),
        }
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn numbered_list_names_pass_through() {
        let invocation =
            call(&["ess", "DescribeScalingInstances", "--ScalingGroupId", "asg-1", "--InstanceId.1", "i-a"]);
        assert_eq!(invocation.product, Product::Ess);
        assert_eq!(invocation.action, "DescribeScalingInstances");
        assert_eq!(invocation.version, "2014-08-28");
        assert_eq!(invocation.params, pairs(&[("ScalingGroupId", "asg-1"), ("InstanceId.1", "i-a")]));
    }

    #[test]
    fn repeated_flags_become_a_numbered_list() {
        let invocation =
            call(&["ess", "EnterStandby", "--InstanceId", "i-a", "--ScalingGroupId", "asg-1", "--InstanceId", "i-b"]);
        assert_eq!(
            invocation.params,
            pairs(&[("InstanceId.1", "i-a"), ("InstanceId.2", "i-b"), ("ScalingGroupId", "asg-1")])
        );
    }

    #[test]
    fn inline_values_and_product_case() {
        let invocation = call(&["OOS", "ListExecutions", "--ExecutionId=exec-1", "--Status=", "--MaxResults", "-1"]);
        assert_eq!(invocation.product, Product::Oos);
        assert_eq!(invocation.version, "2019-06-01");
        assert_eq!(invocation.params, pairs(&[("ExecutionId", "exec-1"), ("Status", ""), ("MaxResults", "-1")]));
    }

    #[test]
    fn seed_start_execution_keeps_the_json_parameters() {
        let parameters = "{ \"invokeType\": \"invoke\", \"scalingGroupId\": \"asg-bp18p2yfxow2dloq\", \"invokeScript\": \"df -h\nifconfig\" }";
        let invocation = call(&[
            "oos",
            "StartExecution",
            "--TemplateName",
            "ACS-ESS-RollingUpdateByRunCommandInScalingGroup",
            "--Parameters",
            parameters,
        ]);
        assert_eq!(
            invocation.params,
            pairs(&[("TemplateName", "ACS-ESS-RollingUpdateByRunCommandInScalingGroup"), ("Parameters", parameters)])
        );
    }

    #[test]
    fn own_options_are_lower_case() {
        let invocation = call(&[
            "ess",
            "DescribeScalingGroups",
            "--version",
            "2022-02-22",
            "--region=cn-hangzhou",
            "--endpoint",
            "http://127.0.0.1:9",
            "--ScalingGroupIds.1",
            "asg-1",
        ]);
        assert_eq!(invocation.version, "2022-02-22");
        assert_eq!(invocation.endpoint.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(invocation.params, pairs(&[("ScalingGroupIds.1", "asg-1"), ("RegionId", "cn-hangzhou")]));
    }

    #[test]
    fn usage_errors() {
        let error = |text: &[&str]| parse(&args(text)).unwrap_err().to_string();
        assert!(error(&["oos", "ListExecutions", "--ExecutionId"]).contains("missing the value of --ExecutionId"));
        assert!(error(&["oos", "ListExecutions", "--ExecutionId", "--Status", "Running"]).contains("missing the value"));
        assert!(error(&["vpc", "DescribeRegions"]).contains("oos"));
        assert!(error(&["vpc", "DescribeRegions"]).contains("ess"));
        assert!(error(&["oos"]).contains("missing the action"));
        assert!(error(&["oos", "ListExecutions", "stray"]).contains("unexpected argument"));
        assert!(error(&["oos", "ListExecutions", "--Action", "X"]).contains("set by rollscale"));
        assert!(error(&["oos", "ListExecutions", "--bogus", "1"]).contains("unknown option --bogus"));
        assert!(error(&["ess", "X", "--InstanceId.1", "a", "--InstanceId.1", "b"]).contains("given twice"));
        assert!(error(&["ess", "X", "--InstanceId.1", "a", "--InstanceId", "b", "--InstanceId", "c"])
            .contains("given twice"));
    }

    #[test]
    fn help_is_not_an_error() {
        assert!(matches!(parse(&args(&["oos", "--help"])), Ok(Parsed::Help(_))));
        assert!(matches!(parse(&args(&["ess", "EnterStandby", "-h"])), Ok(Parsed::Help(_))));
    }
}
