//! The architecture's dependency rules (ARCHITECTURE.md), checked against the manifests and the
//! sources so that a change breaking one fails here rather than in a review.

use std::path::{Path, PathBuf};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the workspace root")
}

/// The names listed under `[dependencies]` of a crate's manifest (not dev- or build-).
fn dependencies(krate: &str) -> Vec<String> {
    let manifest = workspace().join("crates").join(krate).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap_or_else(|e| panic!("{}: {e}", manifest.display()));
    let mut names = Vec::new();
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            continue;
        }
        if inside && !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            names.push(name.to_string());
        }
    }
    assert!(!names.is_empty(), "{krate} lists no dependencies: is the manifest parsed right?");
    names
}

fn refuse(krate: &str, forbidden: &[&str], why: &str) {
    let found: Vec<String> =
        dependencies(krate).into_iter().filter(|name| forbidden.contains(&name.as_str())).collect();
    assert!(found.is_empty(), "{krate} must not depend on {found:?}: {why}");
}

#[test]
fn each_crate_depends_only_on_what_its_layer_allows() {
    refuse(
        "rollscale-core",
        &[
            "tokio",
            "sqlx",
            "axum",
            "reqwest",
            "bollard",
            "rand",
            "rollscale-store",
            "rollscale-fleet",
            "rollscale-engine",
        ],
        "core is pure: no I/O, no async, no randomness",
    );
    refuse(
        "rollscale-client",
        &["rollscale-server", "rollscale-engine", "rollscale-store", "rollscale-fleet", "axum", "sqlx"],
        "the client crate is what a client links; it must build without the service",
    );
    for krate in ["rollscale-core", "rollscale-store", "rollscale-fleet", "rollscale-engine", "rollscale"] {
        refuse(krate, &["axum"], "only the server serves HTTP");
    }
    for krate in ["rollscale-core", "rollscale-store", "rollscale-fleet", "rollscale-engine"] {
        refuse(krate, &["rollscale-server"], "the layers below the server do not call it");
    }
    refuse("rollscale-store", &["rollscale-fleet", "rollscale-engine"], "the store knows no drivers");
    refuse("rollscale-fleet", &["rollscale-store", "rollscale-engine"], "drivers know no store");
}

/// The part of a source file before its test module, where the command's own code is.
fn non_test_code(text: &str) -> &str {
    match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The `rollscale` command's client commands use this crate alone: only `up` (which runs the
/// service) links the server, the engine, the store and the drivers. Core's vocabulary reaches
/// the commands through `rollscale_client::wire`, so the wire a client reads is named in one place.
#[test]
fn the_command_line_client_uses_the_client_crate_only() {
    let src = workspace().join("crates/rollscale/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(files.len() > 5, "the command's sources were not found under {}", src.display());
    let mut offenders = Vec::new();
    for file in files.iter().filter(|file| !file.starts_with(src.join("up"))) {
        let text = std::fs::read_to_string(file).expect("a source file");
        for layer in ["rollscale_server", "rollscale_engine", "rollscale_store", "rollscale_fleet", "rollscale_core"] {
            if non_test_code(&text).contains(layer) {
                offenders.push(format!("{} names {layer}", file.strip_prefix(&src).unwrap_or(file).display()));
            }
        }
    }
    assert!(offenders.is_empty(), "client commands must use rollscale_client only: {offenders:#?}");
}

/// The reply fields a line reads by name: `.get("Name`, `["Name"]` and `.pointer("/Name…`, for
/// the PascalCase names of the APIs' replies (template parameters are camelCase, table headers
/// upper case).
fn reads_by_name(line: &str) -> Vec<String> {
    let pascal = |name: &str| {
        let mut chars = name.chars();
        chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.next().is_some_and(|c| c.is_ascii_lowercase())
    };
    let mut found = Vec::new();
    for (opening, closing) in [(".get(\"", "\""), ("[\"", "\"]"), (".pointer(\"/", "\"")] {
        let mut rest = line;
        while let Some(at) = rest.find(opening) {
            rest = &rest[at + opening.len()..];
            let end = rest.find('"').unwrap_or(rest.len());
            let name = &rest[..end];
            if pascal(name) && rest[end..].starts_with(closing) {
                found.push(name.to_string());
            }
        }
    }
    found
}

/// One description of each wire shape the CLI reads: the server renders its replies with
/// `rollscale_client::wire`'s types and the commands read those same types, never a reply's
/// field by its name. The reads left are listed here with the reason each is left.
#[test]
fn the_command_line_client_reads_replies_through_the_wire_types() {
    const LEFT: &[(&str, &str, &str)] = &[
        // ESS's scaling configuration (some 40 fields in two API versions) for the ids of a
        // group's configurations only: `image-task list --group`.
        ("image_task.rs", "ScalingConfigurations/ScalingConfiguration", "ESS DescribeScalingConfigurations"),
        ("image_task.rs", "ScalingConfigurationId", "ESS DescribeScalingConfigurations"),
    ];
    assert_eq!(reads_by_name(r#"let x = a.get("Executions").b["NextToken"]; c.pointer("/Execution/Id")"#).len(), 3);
    assert!(
        reads_by_name(r#"render_table(&["USER", "ID"]); json!(["ScaleIn", "ScaleOut"]); p.get("imageId")"#).is_empty()
    );
    let src = workspace().join("crates/rollscale/src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut offenders = Vec::new();
    for file in files.iter().filter(|file| !file.starts_with(src.join("up"))) {
        let text = std::fs::read_to_string(file).expect("a source file");
        let name = file.strip_prefix(&src).unwrap_or(file).display().to_string();
        for line in non_test_code(&text).lines().filter(|line| !line.trim_start().starts_with("//")) {
            for field in reads_by_name(line) {
                if !LEFT.iter().any(|(left_file, left_field, _)| *left_file == name && *left_field == field) {
                    offenders.push(format!("{name} reads {field}: {}", line.trim()));
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "read replies through rollscale_client::wire's types (add the shape there and render it with them in the \
         server): {offenders:#?}"
    );
}
