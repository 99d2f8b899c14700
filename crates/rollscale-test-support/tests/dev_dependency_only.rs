//! ARCHITECTURE.md: rollscale-test-support is test code, a dev-dependency of the other crates
//! and never a normal or build dependency of any (it would put fixtures, and the server's
//! whole stack, into a crate's library or binary). Cargo's own view of every manifest of the
//! workspace says which kind each dependency is, whatever its spelling (a table, a target's
//! section, a renamed package).

use serde_json::Value;

const CRATE: &str = "rollscale-test-support";

/// `cargo metadata` of the workspace, without its dependencies' packages.
fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let manifest = rollscale_test_support::workspace_root().join("Cargo.toml");
    let output = std::process::Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline", "--manifest-path"])
        .arg(&manifest)
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON")
}

/// Every (package, dependency kind) where the package depends on rollscale-test-support; the
/// kind is `dev`, `build`, or `normal`.
fn uses(metadata: &Value) -> Vec<(String, String)> {
    let packages = metadata["packages"].as_array().expect("packages");
    let mut uses = Vec::new();
    for package in packages {
        let name = package["name"].as_str().expect("a package's name");
        for dependency in package["dependencies"].as_array().expect("dependencies") {
            if dependency["name"] == CRATE {
                let kind = dependency["kind"].as_str().unwrap_or("normal");
                uses.push((name.to_string(), kind.to_string()));
            }
        }
    }
    uses
}

#[test]
fn no_crate_has_the_test_support_crate_as_a_normal_or_build_dependency() {
    let metadata = metadata();
    let uses = uses(&metadata);
    let wrong: Vec<&(String, String)> = uses.iter().filter(|(_, kind)| kind != "dev").collect();
    assert!(wrong.is_empty(), "{CRATE} must only be a [dev-dependencies] entry; found {wrong:?}");
    // The check sees the crates that do use it: every other crate of the workspace but core and
    // the store (whose tests need none of it).
    let users: Vec<&str> = uses.iter().map(|(package, _)| package.as_str()).collect();
    for user in ["rollscale-fleet", "rollscale-engine", "rollscale-server", "rollscale"] {
        assert!(users.contains(&user), "{user} lists {CRATE} as a dev-dependency: {uses:?}");
    }
}

#[test]
fn the_check_tells_a_normal_dependency_from_a_dev_dependency() {
    let listed = |kind: Value| {
        serde_json::json!({"packages": [{"name": "a", "dependencies": [
            {"name": "serde", "kind": null},
            {"name": CRATE, "kind": kind, "rename": "support"},
        ]}]})
    };
    assert_eq!(uses(&listed(Value::Null)), vec![("a".to_string(), "normal".to_string())]);
    assert_eq!(uses(&listed(Value::from("build"))), vec![("a".to_string(), "build".to_string())]);
    assert_eq!(uses(&listed(Value::from("dev"))), vec![("a".to_string(), "dev".to_string())]);
}
