//! The refusals the HTTP server (hyper) makes by itself, before any of rollscale's code sees a
//! request: a request line over 64 KB (414), headers over its limits (431), bytes that are not
//! an HTTP request (400). hyper answers those with an empty body and closes the connection; each
//! connection's writes go through [`Refusing`], which puts the JSON error shape in the place of
//! such an answer, so that every refusal of the APIs is `{RequestId, HostId, Code, Message}`
//! (the router's and the handlers' own refusals get it from `error::json_refusals`).
//!
//! An answer is one of those when it is a whole response head with `content-length: 0` and one
//! of those statuses, written at once: no answer of rollscale's is (every refusal of its own has
//! a JSON body), and hyper writes its automatic ones that way, from a buffer of its own, just
//! before it closes the connection.

use crate::error::raw_refusal;
use rollscale_core::Code;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A TCP listener whose connections are [`Refusing`].
pub struct Listener(pub TcpListener);

impl axum::serve::Listener for Listener {
    type Io = Refusing<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's accept loop: it waits out transient errors (too many open files, say).
        let (stream, address) = axum::serve::Listener::accept(&mut self.0).await;
        (Refusing { inner: stream, replacing: None }, address)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection whose automatic refusals are answered in the JSON error shape.
pub struct Refusing<T> {
    inner: T,
    /// The answer written instead of hyper's: its bytes, how many are written, and how many of
    /// hyper's they stand for.
    replacing: Option<(Vec<u8>, usize, usize)>,
}

/// The JSON answer to write in place of `written`, when `written` is one of hyper's automatic
/// refusals.
fn replacement(written: &[u8]) -> Option<Vec<u8>> {
    let head = written.strip_suffix(b"\r\n\r\n")?;
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.strip_prefix("HTTP/1.1 ")?;
    if !lines.any(|line| line.eq_ignore_ascii_case("content-length: 0")) {
        return None;
    }
    let (code, message) = match status.get(..3)? {
        "400" => (Code::InvalidRequestMalformed, "the request is not HTTP/1.1 as this server reads it"),
        "414" => (Code::InvalidRequestUriTooLong, "the request line (path and query) is longer than 64 KB"),
        "431" => (Code::InvalidRequestHeadersTooLarge, "the request's headers are larger than this server reads"),
        _ => return None,
    };
    Some(raw_refusal(code, message))
}

impl<T: AsyncRead + Unpin> AsyncRead for Refusing<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Refusing<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacing.is_none() {
            if let Some(answer) = replacement(buf) {
                this.replacing = Some((answer, 0, buf.len()));
            }
        }
        let Some((answer, written, stands_for)) = &mut this.replacing else {
            return Pin::new(&mut this.inner).poll_write(cx, buf);
        };
        while *written < answer.len() {
            match Pin::new(&mut this.inner).poll_write(cx, &answer[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let stands_for = (*stands_for).min(buf.len());
        this.replacing = None;
        Poll::Ready(Ok(stands_for))
    }

    /// Not vectored, so that hyper writes each answer from one buffer (its head whole), which is
    /// what [`replacement`] reads.
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bodiless_automatic_refusal_is_replaced() {
        let hyper = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Mon, 07 Dec 2026 00:00:00 GMT\r\n\r\n";
        let answer = String::from_utf8(replacement(hyper).expect("replaced")).unwrap();
        assert!(answer.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{answer}");
        let (_, body) = answer.split_once("\r\n\r\n").unwrap();
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["Code"], "InvalidRequest.UriTooLong");
        assert!(replacement(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n").is_some());
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").is_some());
        // Rollscale's own answers are left alone: a body, another status, a head not whole.
        assert!(replacement(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n{}").is_none());
        assert!(replacement(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n").is_none());
        assert!(replacement(b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n").is_none());
        assert!(replacement(b"{\"HTTP/1.1 414\"}").is_none());
    }
}
