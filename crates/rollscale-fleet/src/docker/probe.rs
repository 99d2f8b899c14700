//! A tiny HTTP/1.0 client over a Tokio `TcpStream`, for health checks and tests: one `GET`,
//! `Connection: close`, the status code and the body (at most 64 KiB kept).

use std::io;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Most body bytes kept by [`http_get`].
const MAX_BODY: usize = 64 * 1024;

/// `GET http://{address}{path}` with HTTP/1.0, within `timeout` overall. Returns the status code
/// and the body (lossily decoded, at most 64 KiB).
pub async fn http_get(address: &str, path: &str, timeout: Duration) -> io::Result<(u16, String)> {
    match tokio::time::timeout(timeout, get(address, path)).await {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, format!("GET {address}{path} timed out"))),
    }
}

async fn get(address: &str, path: &str) -> io::Result<(u16, String)> {
    let path = if path.starts_with('/') { path.to_string() } else { format!("/{path}") };
    let mut stream = TcpStream::connect(address).await?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {address}\r\nUser-Agent: rollscale\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let read = stream.read(&mut buffer).await?;
        if read == 0 {
            break;
        }
        response.extend_from_slice(&buffer[..read]);
        if response.len() > MAX_BODY + 16 * 1024 {
            break;
        }
    }
    parse_response(&response)
}

/// Splits a raw HTTP/1.x response into its status code and body.
fn parse_response(response: &[u8]) -> io::Result<(u16, String)> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let header_end = response.windows(4).position(|w| w == b"\r\n\r\n").map(|p| (p, p + 4));
    let header_end = header_end.or_else(|| response.windows(2).position(|w| w == b"\n\n").map(|p| (p, p + 2)));
    let (head_len, body_start) = header_end.unwrap_or((response.len(), response.len()));
    let head = String::from_utf8_lossy(&response[..head_len]);
    let status_line = head.lines().next().ok_or_else(|| invalid("empty HTTP response"))?;
    let mut parts = status_line.split_whitespace();
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/") {
        return Err(invalid("not an HTTP response"));
    }
    let status = parts.next().and_then(|code| code.parse().ok()).ok_or_else(|| invalid("no HTTP status code"))?;
    let body = &response[body_start..];
    let body = &body[..body.len().min(MAX_BODY)];
    Ok((status, String::from_utf8_lossy(body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let (status, body) = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n").expect("parse");
        assert_eq!(status, 200);
        assert_eq!(body, "ok\n");
        let (status, body) = parse_response(b"HTTP/1.0 404 Not Found\r\n\r\n").expect("parse");
        assert_eq!((status, body.as_str()), (404, ""));
        assert!(parse_response(b"").is_err());
        assert!(parse_response(b"SSH-2.0\r\n\r\n").is_err());
    }

    #[tokio::test]
    async fn refused_connection_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address").to_string();
        drop(listener);
        assert!(http_get(&address, "/", Duration::from_secs(1)).await.is_err());
    }
}
