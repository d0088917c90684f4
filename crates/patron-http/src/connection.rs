//! The connections the server accepts. hyper answers a request it cannot read by itself,
//! before any route runs: a request line or header field that is not HTTP (400), an address
//! over 64 KiB (414), more or larger header fields than it reads (431). It writes those
//! answers with no body and offers no hook to give them one (hyperium/hyper#3911 proposes
//! one), so a client would get the only errors of the API that are not problem documents.
//!
//! Each accepted connection is therefore wrapped: a write that is exactly such an answer's
//! head (one of those status lines, and no header but `connection`, `date` and
//! `content-length: 0`) is replaced by the problem document. No answer of the API looks like
//! that: every one of them has a `content-type`. hyper closes the connection after such an
//! answer, so the replacement is the last thing written on it.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::problem::{Code, PROBLEM_CONTENT_TYPE, Problem};

/// A TCP listener whose connections answer hyper's own errors as problem documents.
#[derive(Debug)]
pub struct ProblemListener(TcpListener);

impl ProblemListener {
    pub fn new(listener: TcpListener) -> ProblemListener {
        ProblemListener(listener)
    }
}

impl Listener for ProblemListener {
    type Io = ProblemConnection<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, SocketAddr) {
        let (stream, address) = Listener::accept(&mut self.0).await;
        (ProblemConnection::new(stream), address)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }
}

/// The client's address, as the per-address rate limit reads it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddress(pub SocketAddr);

impl Connected<IncomingStream<'_, ProblemListener>> for ClientAddress {
    fn connect_info(stream: IncomingStream<'_, ProblemListener>) -> ClientAddress {
        ClientAddress(*stream.remote_addr())
    }
}

/// A connection whose writes pass through, except hyper's own error answers.
#[derive(Debug)]
pub struct ProblemConnection<S> {
    inner: S,
    /// The answer written instead of hyper's, and how much of it is written.
    replacement: Option<(Vec<u8>, usize)>,
}

impl<S> ProblemConnection<S> {
    pub fn new(inner: S) -> ProblemConnection<S> {
        ProblemConnection {
            inner,
            replacement: None,
        }
    }
}

impl<S: AsyncWrite + Unpin> ProblemConnection<S> {
    /// Writes what is left of the replacement, if any.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((bytes, written)) = &mut self.replacement
            && *written < bytes.len()
        {
            let wrote = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))?;
            if wrote == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *written += wrote;
        }
        Poll::Ready(Ok(()))
    }

    /// Takes hyper's bytes in place of the replacement: they are never sent.
    fn swallow(&mut self, cx: &mut Context<'_>, length: usize) -> Poll<io::Result<usize>> {
        match self.drain(cx) {
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            // What is left goes out on flush, which hyper calls before it closes.
            _ => Poll::Ready(Ok(length)),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ProblemConnection<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ProblemConnection<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.replacement.is_none() {
            match problem_for(buf) {
                Some(replacement) => this.replacement = Some((replacement, 0)),
                None => return Pin::new(&mut this.inner).poll_write(cx, buf),
            }
        }
        this.swallow(cx, buf.len())
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let length = bufs.iter().map(|buf| buf.len()).sum();
        if this.replacement.is_none() {
            // hyper's error answer is a head alone: one slice that is not empty.
            let mut written = bufs.iter().filter(|buf| !buf.is_empty());
            let replacement = match (written.next(), written.next()) {
                (Some(head), None) => problem_for(head),
                _ => None,
            };
            match replacement {
                Some(replacement) => this.replacement = Some((replacement, 0)),
                None => return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs),
            }
        }
        this.swallow(cx, length)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// The problem answer replacing `head`, when `head` is one of hyper's own error answers.
fn problem_for(head: &[u8]) -> Option<Vec<u8>> {
    let head = std::str::from_utf8(head).ok()?.strip_suffix("\r\n\r\n")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let (code, detail) = match status_line {
        "HTTP/1.1 400 Bad Request" => (
            Code::MalformedRequest,
            "the request is not HTTP this server can read: a malformed request line or header field",
        ),
        "HTTP/1.1 414 URI Too Long" => (
            Code::UriTooLong,
            "the request's address (path and query) is longer than this server reads (64 KiB)",
        ),
        "HTTP/1.1 431 Request Header Fields Too Large" => (
            Code::HeadersTooLarge,
            "the request's header fields are more or larger than this server reads (100 fields, about 400 KiB in all)",
        ),
        _ => return None,
    };
    let mut kept = Vec::new();
    let mut empty = false;
    for line in lines {
        let (name, value) = line.split_once(':')?;
        match (name.to_ascii_lowercase().as_str(), value.trim()) {
            ("content-length", "0") => empty = true,
            ("connection" | "date", _) => kept.push(line),
            _ => return None,
        }
    }
    if !empty {
        return None;
    }
    let body = serde_json::to_vec(&Problem::new(code, detail).document()).ok()?;
    let mut answer = format!(
        "{status_line}\r\ncontent-type: {PROBLEM_CONTENT_TYPE}\r\ncontent-length: {}\r\n",
        body.len()
    );
    for line in kept {
        answer.push_str(line);
        answer.push_str("\r\n");
    }
    answer.push_str("\r\n");
    let mut answer = answer.into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}
