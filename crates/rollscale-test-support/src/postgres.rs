//! PostgreSQL for the tests that need one (replicas on one database): a database of its own
//! per test, on the server `ROLLSCALE_TEST_POSTGRES_URL` names or else the one
//! `scripts/postgres` makes available (it installs and starts PostgreSQL on loopback as root,
//! and prints the URL `scripts/test` passes on).

use rollscale_store::Store;

/// `ROLLSCALE_TEST_POSTGRES_URL`, or the URL `scripts/postgres` prints (asked once per test
/// binary). Fails the test, saying how to get one, when there is no server.
pub fn admin_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("ROLLSCALE_TEST_POSTGRES_URL") {
            if !url.is_empty() {
                return url;
            }
        }
        let script = crate::script("postgres");
        let output = std::process::Command::new("bash")
            .arg(&script)
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", script.display()));
        assert!(
            output.status.success(),
            "this test needs PostgreSQL: set ROLLSCALE_TEST_POSTGRES_URL, or let {} install and start it (as root); \
             it failed",
            script.display()
        );
        String::from_utf8(output.stdout).expect("a URL").trim().to_string()
    })
    .clone()
}

/// A fresh database `<prefix>_<time>_<process id>` on the test server: its URL.
pub async fn database(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let name = format!("{prefix}_{nanos:x}_{}", std::process::id());
    Store::postgres_create_database(&admin_url(), &name).await.expect("create a database on the test server")
}
