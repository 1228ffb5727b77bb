//! Transfers: opening a source at an offset (an HTTP range request or a seek), with timeouts,
//! bounded redirects that never leave the allowed schemes, and the classification of every
//! failure as transient (retry, resume) or permanent (try the next mirror).
//!
//! This module moves bytes and reports what the server claimed; it never decides whether the
//! bytes are right (that is the digest's job, in `place`).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{
    HeaderMap, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, RANGE, RETRY_AFTER,
};
use reqwest::StatusCode;

use crate::fetch::source::{check_http, HttpPolicy, Location, Source};

/// How the client behaves on the network.
#[derive(Debug, Clone)]
pub struct TransferOptions {
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response.
    pub read_timeout: Duration,
    pub max_redirects: usize,
    pub http: HttpPolicy,
    /// Extra CA certificates (PEM files) to trust, e.g. a test CA.
    pub ca_certs: Vec<PathBuf>,
}

impl Default for TransferOptions {
    fn default() -> Self {
        TransferOptions {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            max_redirects: 10,
            http: HttpPolicy::default(),
            ca_certs: Vec::new(),
        }
    }
}

/// Why opening or reading a source failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Worth retrying the same source, resuming where it stopped (`retry_after` from the
    /// server, if it said).
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// This source will not work; try the next mirror.
    Permanent { reason: String },
    /// The server's metadata contradicts the signed manifest.
    Mismatch { reason: String },
}

impl Failure {
    pub fn reason(&self) -> &str {
        match self {
            Failure::Transient { reason, .. }
            | Failure::Permanent { reason }
            | Failure::Mismatch { reason } => reason,
        }
    }
}

/// An open body positioned at `offset`.
pub struct Opened {
    pub reader: Box<dyn Read + Send>,
    /// Where the body starts in the file: the requested offset for a honoured range, 0 when
    /// the server sent the whole file instead.
    pub start: u64,
    /// Bytes the server says the body holds, when it says.
    pub length: Option<u64>,
    pub headers: HeaderMap,
}

/// A configured HTTP client (one per fetch, shared by its threads).
///
/// Each transfer gets a small runtime of its own: one worker thread receives and decrypts
/// while the calling thread takes whole network chunks (no copy into a bounce buffer) to write
/// and hash. Measured on loopback, 1 GiB: as fast as the blocking client over plain HTTP
/// (both about curl's time) and a little faster over HTTPS; a single-threaded runtime was
/// faster still over HTTPS but 30 % slower over plain HTTP, where the receive can overlap.
pub struct Client {
    options: TransferOptions,
    certificates: Vec<reqwest::Certificate>,
}

/// The client could not be built (a bad CA file, say).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientError(pub String);

impl Client {
    pub fn new(options: &TransferOptions) -> Result<Client, ClientError> {
        let mut certificates = Vec::new();
        for path in &options.ca_certs {
            let pem = std::fs::read(path).map_err(|error| {
                ClientError(format!(
                    "could not read CA certificate `{}`: {error}",
                    path.display()
                ))
            })?;
            let certificate = reqwest::Certificate::from_pem(&pem).map_err(|error| {
                ClientError(format!(
                    "`{}` is not a PEM certificate: {error}",
                    path.display()
                ))
            })?;
            certificates.push(certificate);
        }
        let client = Client {
            options: options.clone(),
            certificates,
        };
        // Fail now, not at the first transfer, if the configuration cannot work.
        client.http()?;
        Ok(client)
    }

    fn http(&self) -> Result<reqwest::Client, ClientError> {
        let policy = self.options.http;
        let max_redirects = self.options.max_redirects;
        let redirect = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= max_redirects {
                attempt.error(format!("more than {max_redirects} redirects"))
            } else if let Err(reason) = check_http(attempt.url(), policy) {
                attempt.error(format!("redirect refused: {reason}"))
            } else {
                attempt.follow()
            }
        });
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("modelvet/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(self.options.connect_timeout)
            .read_timeout(self.options.read_timeout)
            .redirect(redirect);
        for certificate in &self.certificates {
            builder = builder.add_root_certificate(certificate.clone());
        }
        builder
            .build()
            .map_err(|error| ClientError(format!("could not set up the HTTP client: {error}")))
    }

    /// Opens `source` at `offset`.
    pub fn open(&self, source: &Source, offset: u64) -> Result<Opened, Failure> {
        self.open_range(source, offset, None)
    }

    /// Opens `source` at `offset`, up to and including byte `last` when given (a bounded
    /// range, for parallel chunk downloads).
    pub fn open_range(
        &self,
        source: &Source,
        offset: u64,
        last: Option<u64>,
    ) -> Result<Opened, Failure> {
        match &source.location {
            Location::File(path) => open_file(path, offset),
            Location::Http(url) => {
                let permanent = |reason: String| Failure::Permanent { reason };
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(1)
                    .enable_all()
                    .build()
                    .map_err(|error| {
                        permanent(format!("cannot start the network runtime: {error}"))
                    })?;
                // reqwest's futures need the runtime's timers from the moment they are made.
                let _context = runtime.enter();
                let http = self.http().map_err(|error| permanent(error.0))?;
                let mut request = http.get(url.clone());
                match last {
                    Some(last) => request = request.header(RANGE, format!("bytes={offset}-{last}")),
                    None if offset > 0 => {
                        request = request.header(RANGE, format!("bytes={offset}-"))
                    }
                    None => {}
                }
                if let Some(token) = &source.token {
                    request = request.header(AUTHORIZATION, format!("Bearer {token}"));
                }
                // The response head must arrive within the read timeout too.
                let head = tokio_timeout(&runtime, self.options.read_timeout, request.send());
                let response = match head {
                    Some(result) => result.map_err(|error| classify_error(&error))?,
                    None => {
                        return Err(Failure::Transient {
                            reason: format!("no response within {:?}", self.options.read_timeout),
                            retry_after: None,
                        })
                    }
                };
                let status = response.status();
                let headers = response.headers().clone();
                let length = headers
                    .get(CONTENT_LENGTH)
                    .and_then(|value| value.to_str().ok())
                    .and_then(|value| value.parse::<u64>().ok());
                let start = match status {
                    StatusCode::PARTIAL_CONTENT => {
                        content_range_start(&headers).ok_or_else(|| Failure::Transient {
                            reason: "206 without a usable Content-Range".into(),
                            retry_after: None,
                        })?
                    }
                    StatusCode::OK => 0,
                    StatusCode::RANGE_NOT_SATISFIABLE => {
                        return Err(Failure::Transient {
                            reason: format!("range from byte {offset} not satisfiable"),
                            retry_after: None,
                        })
                    }
                    status
                        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() =>
                    {
                        return Err(Failure::Transient {
                            reason: format!("server answered {status}"),
                            retry_after: retry_after(&headers),
                        })
                    }
                    status => {
                        return Err(Failure::Permanent {
                            reason: format!("server answered {status}"),
                        })
                    }
                };
                Ok(Opened {
                    reader: Box::new(Body {
                        runtime,
                        response,
                        pending: bytes::Bytes::new(),
                        read_timeout: self.options.read_timeout,
                    }),
                    start,
                    length,
                    headers,
                })
            }
        }
    }

    /// Reads a small document (a manifest, a signature) whole, refusing more than `limit`.
    pub fn read_small(&self, location: &Location, limit: u64) -> Result<Vec<u8>, String> {
        let source = Source {
            location: location.clone(),
            label: String::new(),
            hub_revision: None,
            token: None,
        };
        self.read_document(&source, limit).map(|(bytes, _)| bytes)
    }

    /// Reads a small document whole, with the response headers (for pagination links).
    pub fn read_document(
        &self,
        source: &Source,
        limit: u64,
    ) -> Result<(Vec<u8>, HeaderMap), String> {
        let opened = self
            .open(source, 0)
            .map_err(|failure| failure.reason().to_owned())?;
        let mut bytes = Vec::new();
        opened
            .reader
            .take(limit.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|error| error.to_string())?;
        if bytes.len() as u64 > limit {
            return Err(format!("larger than the limit of {limit} bytes"));
        }
        Ok((bytes, opened.headers))
    }
}

/// A response body read on the calling thread, one network chunk at a time.
struct Body {
    runtime: tokio::runtime::Runtime,
    response: reqwest::Response,
    pending: bytes::Bytes,
    read_timeout: Duration,
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pending.is_empty() {
            let next = tokio_timeout(&self.runtime, self.read_timeout, self.response.chunk());
            match next {
                Some(Ok(Some(chunk))) => self.pending = chunk,
                Some(Ok(None)) => return Ok(0),
                Some(Err(error)) => return Err(io::Error::other(crate::error::chain(&error))),
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no data for {:?}", self.read_timeout),
                    ))
                }
            }
        }
        let len = buf.len().min(self.pending.len());
        let chunk = self.pending.split_to(len);
        if let Some(target) = buf.get_mut(..len) {
            target.copy_from_slice(&chunk);
        }
        Ok(len)
    }
}

/// Runs `future` on `runtime` for at most `limit`; `None` when it took longer.
fn tokio_timeout<F: std::future::Future>(
    runtime: &tokio::runtime::Runtime,
    limit: Duration,
    future: F,
) -> Option<F::Output> {
    runtime.block_on(async { tokio::time::timeout(limit, future).await.ok() })
}

fn open_file(path: &std::path::Path, offset: u64) -> Result<Opened, Failure> {
    let permanent = |error: io::Error| Failure::Permanent {
        reason: format!("cannot read `{}`: {error}", path.display()),
    };
    let mut file = File::open(path).map_err(permanent)?;
    let length = file.metadata().map_err(permanent)?.len();
    let start = offset.min(length);
    file.seek(SeekFrom::Start(start)).map_err(permanent)?;
    Ok(Opened {
        reader: Box::new(file),
        start,
        length: Some(length - start),
        headers: HeaderMap::new(),
    })
}

fn classify_error(error: &reqwest::Error) -> Failure {
    let reason = crate::error::chain(error);
    if error.is_redirect() || error.is_builder() {
        Failure::Permanent { reason }
    } else {
        Failure::Transient {
            reason,
            retry_after: None,
        }
    }
}

fn content_range_start(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(CONTENT_RANGE)?.to_str().ok()?;
    let range = value.strip_prefix("bytes ")?;
    let (start, _) = range.split_once('-')?;
    start.trim().parse().ok()
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.min(60)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn reads_content_range_and_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_RANGE, HeaderValue::from_static("bytes 100-199/200"));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(content_range_start(&headers), Some(100));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(3)));
    }

    #[test]
    fn files_open_at_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        let mut opened = open_file(&path, 4).unwrap();
        let mut rest = String::new();
        opened.reader.read_to_string(&mut rest).unwrap();
        assert_eq!(
            (opened.start, opened.length, rest.as_str()),
            (4, Some(6), "456789")
        );
    }
}
