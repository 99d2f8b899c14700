//! Policy evaluation, property-tested: explicit Deny > Allow > implicit deny, whatever the
//! order of documents and statements.

use proptest::prelude::*;
use rollscale_core::policy::{evaluate, wildcard_match, Decision, Effect, PolicyDocument, Statement};

const ACTIONS: &[&str] = &[
    "oos:StartExecution",
    "oos:ListExecutions",
    "ess:DescribeScalingGroups",
    "ess:DeleteScalingGroup",
    "ram:CreateUser",
    "ram:ListAuditEvents",
];

const PATTERNS: &[&str] = &[
    "*",
    "oos:*",
    "ess:*",
    "ram:*",
    "ess:Describe*",
    "oos:List*",
    "*:Delete*",
    "oos:StartExecution",
    "ess:?eleteScalingGroup",
];

fn statement() -> impl Strategy<Value = Statement> {
    (any::<bool>(), proptest::sample::subsequence(PATTERNS, 1..3)).prop_map(|(deny, actions)| Statement {
        effect: if deny { Effect::Deny } else { Effect::Allow },
        actions: actions.into_iter().map(str::to_string).collect(),
        resources: vec!["*".into()],
    })
}

fn documents() -> impl Strategy<Value = Vec<PolicyDocument>> {
    proptest::collection::vec(
        proptest::collection::vec(statement(), 1..4).prop_map(|statements| PolicyDocument { statements }),
        0..4,
    )
}

/// The rule, written the obvious way.
fn expected(documents: &[PolicyDocument], action: &str) -> Decision {
    let matching: Vec<&Statement> = documents
        .iter()
        .flat_map(|d| &d.statements)
        .filter(|s| s.actions.iter().any(|p| wildcard_match(&p.to_lowercase(), &action.to_lowercase())))
        .collect();
    if matching.iter().any(|s| s.effect == Effect::Deny) {
        Decision::ExplicitDeny
    } else if matching.iter().any(|s| s.effect == Effect::Allow) {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

proptest! {
    #[test]
    fn deny_beats_allow_beats_nothing(documents in documents(), action in proptest::sample::select(ACTIONS)) {
        let decision = evaluate(&documents, action, "*");
        prop_assert_eq!(decision, expected(&documents, action));
        // The order of documents does not matter.
        let reversed: Vec<PolicyDocument> = documents.iter().rev().cloned().collect();
        prop_assert_eq!(evaluate(&reversed, action, "*"), decision);
        // Adding an Allow never turns a Deny into anything else; adding a Deny for the action
        // always denies.
        let mut with_deny = documents.clone();
        with_deny.push(PolicyDocument { statements: vec![Statement {
            effect: Effect::Deny, actions: vec![action.to_string()], resources: vec!["*".into()] }] });
        prop_assert_eq!(evaluate(&with_deny, action, "*"), Decision::ExplicitDeny);
        if decision == Decision::ExplicitDeny {
            let mut with_allow = documents.clone();
            with_allow.push(PolicyDocument { statements: vec![Statement {
                effect: Effect::Allow, actions: vec!["*".into()], resources: vec!["*".into()] }] });
            prop_assert_eq!(evaluate(&with_allow, action, "*"), Decision::ExplicitDeny);
        }
    }

    #[test]
    fn canonical_json_parses_back_to_the_same_document(documents in documents()) {
        for document in documents {
            prop_assert_eq!(PolicyDocument::parse(&document.to_json()), Ok(document.clone()));
        }
    }

    #[test]
    fn a_star_pattern_matches_its_own_prefix_and_suffix(prefix in "[a-z]{0,6}", middle in "[a-zA-Z:]{0,8}", suffix in "[a-z]{0,6}") {
        let text = format!("{prefix}{middle}{suffix}");
        let pattern = format!("{prefix}*{suffix}");
        prop_assert!(wildcard_match(&pattern, &text));
        prop_assert!(wildcard_match(&text, &text));
    }
}
