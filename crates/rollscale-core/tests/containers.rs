//! A container-group update's containers (`ContainerUpdateType::apply`,
//! `domain::merge_containers`): the one rule both drivers (simulated and containers) follow.

use rollscale_core::domain::{merge_containers, ContainerSpec};
use rollscale_core::params::ContainerUpdateType;

fn container(name: &str, image: &str, port: Option<u16>) -> ContainerSpec {
    ContainerSpec { name: name.into(), image: image.into(), port, ..ContainerSpec::default() }
}

/// `IncrementalUpdate`: the given fields of a known name replace its own, the fields not given
/// (empty image, command, env; no port) are kept, and new names are appended in order.
#[test]
fn incremental_merge_replaces_given_fields_and_appends_new_names() {
    let current = vec![
        ContainerSpec { name: "web".into(), image: "nginx:1".into(), port: Some(80), ..Default::default() },
        ContainerSpec { name: "side".into(), image: "envoy:1".into(), ..Default::default() },
    ];
    let given = vec![
        ContainerSpec { name: "web".into(), env: vec![("A".into(), "1".into())], ..Default::default() },
        ContainerSpec { name: "new".into(), image: "redis:7".into(), ..Default::default() },
    ];
    let merged = merge_containers(&current, &given);
    assert_eq!(merged.len(), 3);
    assert_eq!(merged[0].image, "nginx:1");
    assert_eq!(merged[0].port, Some(80));
    assert_eq!(merged[0].env, vec![("A".to_string(), "1".to_string())]);
    assert_eq!(merged[1], current[1]);
    assert_eq!(merged[2].name, "new");

    let every_field = ContainerSpec {
        name: "web".into(),
        image: "nginx:2".into(),
        command: vec!["nginx".into(), "-g".into(), "daemon off;".into()],
        env: vec![("B".into(), "2".into())],
        port: Some(8080),
    };
    assert_eq!(merge_containers(&current, std::slice::from_ref(&every_field)), vec![every_field, current[1].clone()]);
    assert_eq!(merge_containers(&current, &[]), current);
    assert_eq!(merge_containers(&[], &given), given);
}

/// `RenewUpdate` gives exactly the containers given; `IncrementalUpdate` merges them.
#[test]
fn updates_renew_or_merge() {
    let current = vec![container("web", "a:1", Some(80)), container("side", "b:1", None)];
    let given = vec![container("side", "b:2", None), container("new", "c:1", None)];
    let renewed = ContainerUpdateType::RenewUpdate.apply(&current, &given);
    assert_eq!(renewed, given);
    let merged = ContainerUpdateType::IncrementalUpdate.apply(&current, &given);
    assert_eq!(merged.len(), 3);
    assert_eq!(merged[0], current[0]);
    assert_eq!(merged[1].image, "b:2");
    assert_eq!(merged[2].name, "new");
}
