//! The two reads the driver makes most — inspecting a container and listing containers — done
//! with a plain HTTP/1.0 `GET` and lenient types of our own, rather than through `bollard`'s
//! models: Podman reports states Docker does not have (`stopping`, `stopped`, `initialized`),
//! which `bollard`'s closed enums refuse, failing the whole answer. Here a state is a string.

use crate::FleetError;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UnixStream};

/// Where the Docker-compatible API listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Unix(PathBuf),
    Tcp(String),
}

impl Endpoint {
    /// Reads `unix:///path`, `/path`, `tcp://host:port` or `http://host:port`.
    pub(crate) fn parse(text: &str) -> Option<Endpoint> {
        if let Some(path) = text.strip_prefix("unix://") {
            return Some(Endpoint::Unix(PathBuf::from(path)));
        }
        if text.starts_with('/') {
            return Some(Endpoint::Unix(PathBuf::from(text)));
        }
        let address = text.strip_prefix("tcp://").or_else(|| text.strip_prefix("http://"))?;
        let address = address.trim_end_matches('/');
        (!address.is_empty()).then(|| Endpoint::Tcp(address.to_string()))
    }
}

/// A port binding as inspect reports it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Binding {
    pub host_ip: Option<String>,
    pub host_port: Option<String>,
}

pub(crate) type Ports = HashMap<String, Option<Vec<Binding>>>;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct InspectConfig {
    pub image: Option<String>,
    pub labels: Option<HashMap<String, String>>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct InspectState {
    pub status: Option<String>,
    pub running: Option<bool>,
    pub exit_code: Option<i64>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct InspectNetwork {
    pub ports: Option<Ports>,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct InspectHost {
    pub port_bindings: Option<Ports>,
}

/// `GET /containers/{name}/json`, the parts the driver reads.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Inspect {
    pub id: Option<String>,
    /// The ID of the image the container runs (`sha256:…`).
    pub image: Option<String>,
    pub config: Option<InspectConfig>,
    pub state: Option<InspectState>,
    pub network_settings: Option<InspectNetwork>,
    pub host_config: Option<InspectHost>,
}

impl Inspect {
    pub(crate) fn running(&self) -> bool {
        self.state.as_ref().and_then(|state| state.running).unwrap_or(false)
    }

    pub(crate) fn status(&self) -> &str {
        self.state.as_ref().and_then(|state| state.status.as_deref()).unwrap_or_default()
    }

    pub(crate) fn exit_code(&self) -> i64 {
        self.state.as_ref().and_then(|state| state.exit_code).unwrap_or_default()
    }

    pub(crate) fn labels(&self) -> HashMap<String, String> {
        self.config.as_ref().and_then(|config| config.labels.clone()).unwrap_or_default()
    }

    /// The image reference the container was created from, as the backend reports it.
    pub(crate) fn image(&self) -> String {
        self.config.as_ref().and_then(|config| config.image.clone()).unwrap_or_default()
    }

    /// The ID of the image the container runs (`sha256:…`), or empty.
    pub(crate) fn image_id(&self) -> &str {
        self.image.as_deref().unwrap_or_default()
    }
}

/// A published port as the list of containers reports it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub(crate) struct ListedPort {
    #[serde(rename = "IP")]
    pub ip: Option<String>,
    #[serde(rename = "PrivatePort")]
    pub private_port: Option<u16>,
    #[serde(rename = "PublicPort")]
    pub public_port: Option<u16>,
    #[serde(rename = "Type")]
    pub kind: Option<String>,
}

/// One entry of `GET /containers/json`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct Summary {
    pub id: Option<String>,
    pub names: Option<Vec<String>>,
    /// The image reference it was created from (Docker reports the image's ID instead once
    /// that name points to another image).
    pub image: Option<String>,
    /// The ID of the image it runs.
    #[serde(rename = "ImageID")]
    pub image_id: Option<String>,
    pub labels: Option<HashMap<String, String>>,
    pub state: Option<String>,
    pub ports: Option<Vec<ListedPort>>,
}

impl Summary {
    /// The container's name, without Docker's leading `/`.
    pub(crate) fn name(&self) -> String {
        let first = self.names.as_ref().and_then(|names| names.first());
        first.map(|name| name.trim_start_matches('/').to_string()).unwrap_or_default()
    }

    pub(crate) fn labels(&self) -> HashMap<String, String> {
        self.labels.clone().unwrap_or_default()
    }

    pub(crate) fn running(&self) -> bool {
        self.state.as_deref() == Some("running")
    }

    /// What inspecting the container would report of what the list tells: its id, image,
    /// labels, state and published ports (so that one list stands for an inspect of each).
    pub(crate) fn as_inspect(&self) -> Inspect {
        let mut ports: Ports = HashMap::new();
        for port in self.ports.iter().flatten() {
            let (Some(private), Some(public)) = (port.private_port, port.public_port) else { continue };
            let key = format!("{private}/{}", port.kind.as_deref().unwrap_or("tcp"));
            let binding = Binding { host_ip: port.ip.clone(), host_port: Some(public.to_string()) };
            ports.entry(key).or_insert_with(|| Some(Vec::new())).get_or_insert_with(Vec::new).push(binding);
        }
        let status = self.state.clone();
        Inspect {
            id: self.id.clone(),
            image: self.image_id.clone(),
            config: Some(InspectConfig { image: self.image.clone(), labels: self.labels.clone() }),
            state: Some(InspectState { running: Some(self.running()), status, exit_code: None }),
            network_settings: Some(InspectNetwork { ports: Some(ports) }),
            host_config: None,
        }
    }
}

/// A reader of the API.
#[derive(Clone, Debug)]
pub(crate) struct Reader {
    endpoint: Endpoint,
    version: String,
    timeout: Duration,
}

impl Reader {
    pub(crate) fn new(endpoint: Endpoint, version: &str, timeout: Duration) -> Reader {
        Reader { endpoint, version: version.to_string(), timeout }
    }

    /// Inspects a container; `None` if it does not exist.
    pub(crate) async fn inspect(&self, name: &str) -> Result<Option<Inspect>, FleetError> {
        self.get(&format!("/containers/{}/json", encode(name)), &format!("inspecting {name}")).await
    }

    /// Lists every container (any state) carrying `label` (`key` or `key=value`).
    pub(crate) async fn list(&self, label: &str) -> Result<Vec<Summary>, FleetError> {
        let filters = serde_json::json!({ "label": [label] }).to_string();
        let path = format!("/containers/json?all=true&filters={}", encode(&filters));
        Ok(self.get(&path, "listing containers").await?.unwrap_or_default())
    }

    async fn get<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<Option<T>, FleetError> {
        let request = format!(
            "GET /v{}{path} HTTP/1.0\r\nHost: docker\r\nUser-Agent: rollscale\r\nAccept: application/json\r\n\r\n",
            self.version
        );
        let exchange = async {
            match &self.endpoint {
                Endpoint::Unix(path) => exchange(UnixStream::connect(path).await?, &request).await,
                Endpoint::Tcp(address) => exchange(TcpStream::connect(address).await?, &request).await,
            }
        };
        let response = match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(response)) => response,
            Ok(Err(error)) => return Err(FleetError::Unavailable(format!("{what}: {error}"))),
            Err(_) => return Err(FleetError::Unavailable(format!("{what}: no answer within {:?}", self.timeout))),
        };
        let (status, body) =
            split_response(&response).ok_or_else(|| FleetError::Unavailable(format!("{what}: not an HTTP answer")))?;
        match status {
            200..=299 => serde_json::from_slice(body)
                .map(Some)
                .map_err(|error| FleetError::Unavailable(format!("{what}: unreadable answer: {error}"))),
            404 => Ok(None),
            _ => {
                let message = serde_json::from_slice::<serde_json::Value>(body)
                    .ok()
                    .and_then(|value| value.get("message").and_then(|m| m.as_str()).map(str::to_string))
                    .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
                Err(FleetError::Failed(format!("{what}: {message} (status {status})")))
            }
        }
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, request: &str) -> std::io::Result<Vec<u8>> {
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    Ok(response)
}

/// The status code and body of an HTTP/1.0 answer (no chunked encoding: we ask in 1.0).
fn split_response(response: &[u8]) -> Option<(u16, &[u8])> {
    let end = response.windows(4).position(|window| window == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..end]).ok()?;
    let status = head.lines().next()?.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, &response[end + 4..]))
}

/// Percent-encodes everything but unreserved characters.
fn encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(Endpoint::parse("unix:///run/p.sock"), Some(Endpoint::Unix("/run/p.sock".into())));
        assert_eq!(Endpoint::parse("/run/p.sock"), Some(Endpoint::Unix("/run/p.sock".into())));
        assert_eq!(Endpoint::parse("tcp://127.0.0.1:2375"), Some(Endpoint::Tcp("127.0.0.1:2375".into())));
        assert_eq!(Endpoint::parse("http://127.0.0.1:2375/"), Some(Endpoint::Tcp("127.0.0.1:2375".into())));
        assert_eq!(Endpoint::parse("ftp://x"), None);
        assert_eq!(Endpoint::parse("tcp://"), None);
    }

    #[test]
    fn podman_states_and_nulls_are_read() {
        let inspect: Inspect = serde_json::from_str(
            r#"{"Id":"abc","State":{"Status":"stopping","Running":false,"ExitCode":0},
                "Config":{"Image":"localhost/x:v1","Labels":null},"NetworkSettings":{"Ports":{"8080/tcp":null}},
                "HostConfig":{"PortBindings":{"8080/tcp":[{"HostIp":"127.0.0.1","HostPort":"4000"}]}}}"#,
        )
        .expect("inspect");
        assert_eq!(inspect.status(), "stopping");
        assert!(!inspect.running());
        assert!(inspect.labels().is_empty());
        assert_eq!(inspect.image(), "localhost/x:v1");
        let list: Vec<Summary> =
            serde_json::from_str(r#"[{"Names":["/rollscale-i-a"],"Labels":{"a":"b"},"State":"stopped"}]"#)
                .expect("list");
        assert_eq!(list[0].name(), "rollscale-i-a");
        assert!(!list[0].running());
    }

    #[test]
    fn a_listed_container_reads_as_its_inspection() {
        let list: Vec<Summary> = serde_json::from_str(
            r#"[{"Id":"abc","Names":["/rollscale-i-a"],"Image":"localhost/x:v1","ImageID":"sha256:31da",
                 "Labels":{"a":"b"},"State":"running","Ports":[{"IP":"127.0.0.1","PrivatePort":8080,
                 "PublicPort":36993,"Type":"tcp"},{"PrivatePort":9090,"Type":"tcp"}]},
                {"Names":["/b"],"State":"exited","Ports":null,"Labels":null}]"#,
        )
        .expect("list");
        let inspect = list[0].as_inspect();
        assert_eq!(inspect.id.as_deref(), Some("abc"));
        assert_eq!((inspect.image(), inspect.image_id()), ("localhost/x:v1".to_string(), "sha256:31da"));
        assert!(inspect.running());
        assert_eq!(inspect.labels(), HashMap::from([("a".to_string(), "b".to_string())]));
        let ports = inspect.network_settings.and_then(|settings| settings.ports).expect("ports");
        let binding = Binding { host_ip: Some("127.0.0.1".into()), host_port: Some("36993".into()) };
        assert_eq!(ports, HashMap::from([("8080/tcp".to_string(), Some(vec![binding]))]));
        let stopped = list[1].as_inspect();
        assert!(!stopped.running());
        assert_eq!(stopped.status(), "exited");
        assert_eq!(stopped.image_id(), "");
    }

    #[test]
    fn responses_split_and_queries_encode() {
        assert_eq!(split_response(b"HTTP/1.0 404 Not Found\r\nA: b\r\n\r\n{}"), Some((404, &b"{}"[..])));
        assert_eq!(split_response(b"garbage"), None);
        assert_eq!(encode(r#"{"label":["a.b=i-1"]}"#), "%7B%22label%22%3A%5B%22a.b%3Di-1%22%5D%7D");
    }
}
