//! A loopback HTTP/1.1 server for the `fetch` tests, with fault injection.
//!
//! std only: one accept thread plus one thread per connection, every response sent with
//! `Connection: close`. It serves GET and HEAD for a fixed set of [`Route`]s, with
//! `Content-Length`, `Accept-Ranges: bytes` and single byte ranges (`bytes=N-`, `bytes=N-M`,
//! `bytes=-N`: 206 with `Content-Range`, 416 when the start is past the end). Each route's
//! [`Behaviour`] injects one fault, most of them for the first `times` requests only, so that
//! a client that retries or resumes recovers. Every request is recorded (method, path,
//! lowercased headers, arrival time) for assertions.
//!
//! Nothing here can hang a test: sockets have read and write timeouts, stalls sleep in slices
//! that watch the stop flag, the accept loop gives up after [`DEADLINE`], and dropping the
//! server stops and joins every thread.

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// No server accepts connections for longer than this, whatever the test does.
pub const DEADLINE: Duration = Duration::from_secs(60);
/// Socket read and write timeout on the server side.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head (request line + headers) the server reads.
const MAX_HEAD: usize = 16 * 1024;

/// What a route does wrong (or not).
///
/// Counting: [`Behaviour::StatusThen`] counts every request to the route (GET and HEAD);
/// the body faults ([`Behaviour::DropAfter`], [`Behaviour::Stall`]) count only responses that
/// carry a body (GET answered 200/206), so a client's HEAD does not use them up.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub enum Behaviour {
    /// Serve the body, honouring ranges.
    Normal,
    /// Send the headers (full `Content-Length`) and then only `bytes` bytes of the response
    /// body before closing, for the first `times` body responses; then serve normally.
    DropAfter { bytes: usize, times: usize },
    /// Always serve the body with one byte flipped (the middle one).
    WrongBytes,
    /// Always serve the body followed by `extra` more bytes, `Content-Length` included.
    ExtraBytes { extra: usize },
    /// Send `after_bytes` bytes of the body, then sleep `millis` before sending the rest, for
    /// the first `times` body responses.
    Stall {
        after_bytes: usize,
        millis: u64,
        times: usize,
    },
    /// Answer `status` (with `Retry-After` when given) to the first `times` requests.
    StatusThen {
        status: u16,
        times: usize,
        retry_after: Option<u32>,
    },
    /// Always answer 200 with the full body, even to a range request.
    IgnoreRange,
    /// Always answer `status` with `Location: to` (a loop is two routes naming each other).
    Redirect { to: String, status: u16 },
    /// Serve the body with the headers of the Hugging Face resolve endpoint:
    /// `X-Linked-Etag: "<etag>"`, `X-Linked-Size: <size>`, `X-Repo-Commit: <commit>`.
    HubResolve {
        etag: String,
        size: u64,
        commit: String,
    },
    /// Several of the above at once, each at its own layer (redirect, status, content, range,
    /// transmission); e.g. `[DropAfter, IgnoreRange]` drops once, then ignores the resume.
    All(Vec<Behaviour>),
}

/// One path the server answers.
#[derive(Debug, Clone)]
pub struct Route {
    /// Exact request path, query excluded, e.g. `/m/config.json`.
    pub path: String,
    pub body: Vec<u8>,
    pub behaviour: Behaviour,
    /// Added to every response of this route (faults and redirects included).
    pub extra_headers: Vec<(String, String)>,
}

#[allow(dead_code)]
impl Route {
    pub fn new(path: &str, body: impl Into<Vec<u8>>, behaviour: Behaviour) -> Route {
        Route {
            path: path.to_owned(),
            body: body.into(),
            behaviour,
            extra_headers: Vec::new(),
        }
    }

    pub fn normal(path: &str, body: impl Into<Vec<u8>>) -> Route {
        Route::new(path, body, Behaviour::Normal)
    }

    pub fn redirect(path: &str, to: &str, status: u16) -> Route {
        Route::new(
            path,
            Vec::new(),
            Behaviour::Redirect {
                to: to.to_owned(),
                status,
            },
        )
    }

    pub fn header(mut self, name: &str, value: &str) -> Route {
        self.extra_headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    /// The request target as sent, query included.
    pub path: String,
    /// Header names lowercased; a repeated header keeps its last value.
    pub headers: BTreeMap<String, String>,
    pub at: Instant,
}

#[allow(dead_code)]
impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// A running server; stops and joins its threads when dropped.
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

struct Shared {
    routes: Vec<(Route, Counters)>,
    requests: Mutex<Vec<RecordedRequest>>,
    stop: AtomicBool,
}

#[derive(Default)]
struct Counters {
    requests: AtomicUsize,
    bodies: AtomicUsize,
}

#[allow(dead_code)]
impl TestServer {
    /// Binds `host:0` (`127.0.0.1`, `127.0.0.2`, ...) and starts serving `routes`.
    pub fn start(host: &str, routes: Vec<Route>) -> TestServer {
        let listener =
            TcpListener::bind((host, 0)).unwrap_or_else(|error| panic!("bind {host}:0: {error}"));
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            routes: routes
                .into_iter()
                .map(|route| (route, Counters::default()))
                .collect(),
            requests: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let accept = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || accept_loop(&listener, &shared))
        };
        TestServer {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT`, no trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `base_url() + path`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// The requests whose path (query excluded) is `path`.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.path.split('?').next() == Some(path))
            .collect()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    let started = Instant::now();
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stop.load(Ordering::SeqCst) && started.elapsed() < DEADLINE {
        match listener.accept() {
            Ok((stream, _)) => {
                let shared = Arc::clone(shared);
                connections.push(thread::spawn(move || serve(stream, &shared)));
            }
            Err(error) if error.kind() == ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(5));
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
        connections.retain(|handle| !handle.is_finished());
    }
    // Stop every connection still running (stalls watch the flag) and wait for it.
    shared.stop.store(true, Ordering::SeqCst);
    for handle in connections {
        let _ = handle.join();
    }
}

fn serve(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let Some(request) = read_head(&mut stream) else {
        return;
    };
    shared.requests.lock().unwrap().push(request.clone());
    respond(&mut stream, shared, &request);
    // Close gracefully: stop sending, then drain what the client still sends so that the
    // kernel does not answer with a reset that could destroy the response in flight.
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut sink = [0u8; 1024];
    while let Ok(n) = stream.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
}

/// Reads the request line and headers; `None` for anything unusable.
fn read_head(stream: &mut TcpStream) -> Option<RecordedRequest> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|window| window == b"\r\n\r\n") {
        if head.len() > MAX_HEAD {
            return None;
        }
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let mut lines = text.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let path = request_line.next()?.to_owned();
    let mut headers = BTreeMap::new();
    for line in lines.take_while(|line| !line.is_empty()) {
        let (name, value) = line.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    Some(RecordedRequest {
        method,
        path,
        headers,
        at: Instant::now(),
    })
}

/// The faults of a route sorted by layer.
#[derive(Default)]
struct Plan<'a> {
    redirect: Option<(&'a str, u16)>,
    status: Option<(u16, usize, Option<u32>)>,
    wrong_bytes: bool,
    extra: usize,
    hub: Option<(&'a str, u64, &'a str)>,
    ignore_range: bool,
    drop_after: Option<(usize, usize)>,
    stall: Option<(usize, u64, usize)>,
}

impl<'a> Plan<'a> {
    fn add(&mut self, behaviour: &'a Behaviour) {
        match behaviour {
            Behaviour::Normal => {}
            Behaviour::DropAfter { bytes, times } => self.drop_after = Some((*bytes, *times)),
            Behaviour::WrongBytes => self.wrong_bytes = true,
            Behaviour::ExtraBytes { extra } => self.extra = *extra,
            Behaviour::Stall {
                after_bytes,
                millis,
                times,
            } => self.stall = Some((*after_bytes, *millis, *times)),
            Behaviour::StatusThen {
                status,
                times,
                retry_after,
            } => self.status = Some((*status, *times, *retry_after)),
            Behaviour::IgnoreRange => self.ignore_range = true,
            Behaviour::Redirect { to, status } => self.redirect = Some((to, *status)),
            Behaviour::HubResolve { etag, size, commit } => self.hub = Some((etag, *size, commit)),
            Behaviour::All(all) => all.iter().for_each(|behaviour| self.add(behaviour)),
        }
    }
}

fn respond(stream: &mut TcpStream, shared: &Shared, request: &RecordedRequest) {
    let path = request.path.split('?').next().unwrap_or("");
    let Some((route, counters)) = shared.routes.iter().find(|(route, _)| route.path == path) else {
        write_simple(stream, 404, &[], request);
        return;
    };
    let extra = &route.extra_headers;
    if request.method != "GET" && request.method != "HEAD" {
        write_simple(stream, 405, extra, request);
        return;
    }
    let mut plan = Plan::default();
    plan.add(&route.behaviour);
    let nth_request = counters.requests.fetch_add(1, Ordering::SeqCst);

    if let Some((to, status)) = plan.redirect {
        let mut headers = extra.clone();
        headers.push(("Location".into(), to.to_owned()));
        write_simple(stream, status, &headers, request);
        return;
    }
    if let Some((status, times, retry_after)) = plan.status {
        if nth_request < times {
            let mut headers = extra.clone();
            if let Some(seconds) = retry_after {
                headers.push(("Retry-After".into(), seconds.to_string()));
            }
            write_simple(stream, status, &headers, request);
            return;
        }
    }

    let mut body = route.body.clone();
    if plan.wrong_bytes && !body.is_empty() {
        let middle = body.len() / 2;
        body[middle] ^= 0x01;
    }
    body.extend(std::iter::repeat_n(b'X', plan.extra));

    let mut headers = extra.clone();
    headers.push(("Accept-Ranges".into(), "bytes".into()));
    if let Some((etag, size, commit)) = plan.hub {
        headers.push(("X-Linked-Etag".into(), format!("\"{etag}\"")));
        headers.push(("X-Linked-Size".into(), size.to_string()));
        headers.push(("X-Repo-Commit".into(), commit.to_owned()));
    }
    let total = body.len();
    let range = if plan.ignore_range {
        None
    } else {
        request
            .header("range")
            .and_then(|value| parse_range(value, total))
    };
    let (status, slice) = match range {
        None => (200, &body[..]),
        Some(Ok((start, end))) => {
            headers.push((
                "Content-Range".into(),
                format!("bytes {start}-{}/{total}", end - 1),
            ));
            (206, &body[start..end])
        }
        Some(Err(())) => {
            headers.push(("Content-Range".into(), format!("bytes */{total}")));
            write_simple(stream, 416, &headers, request);
            return;
        }
    };
    if write_head(stream, status, &headers, slice.len()).is_err() || request.method == "HEAD" {
        return;
    }
    let nth_body = counters.bodies.fetch_add(1, Ordering::SeqCst);
    if let Some((bytes, times)) = plan.drop_after {
        if nth_body < times {
            let _ = stream.write_all(&slice[..bytes.min(slice.len())]);
            return;
        }
    }
    if let Some((after, millis, times)) = plan.stall {
        if nth_body < times {
            let split = after.min(slice.len());
            if stream.write_all(&slice[..split]).is_err() {
                return;
            }
            let _ = stream.flush();
            let until = Instant::now() + Duration::from_millis(millis);
            while Instant::now() < until && !shared.stop.load(Ordering::SeqCst) {
                thread::sleep(Duration::from_millis(10));
            }
            let _ = stream.write_all(&slice[split..]);
            return;
        }
    }
    let _ = stream.write_all(slice);
}

/// Parses a single `bytes=` range against a body of `total` bytes: `None` to ignore the
/// header (malformed or several ranges: serve 200), `Some(Err)` for 416, else the half-open
/// byte interval.
fn parse_range(value: &str, total: usize) -> Option<Result<(usize, usize), ()>> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (first, last) = spec.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        // Suffix range: the last N bytes.
        let n: usize = last.parse().ok()?;
        if n == 0 {
            return Some(Err(()));
        }
        return Some(Ok((total.saturating_sub(n), total)));
    }
    let start: usize = first.parse().ok()?;
    let end = if last.is_empty() {
        total
    } else {
        let last: usize = last.parse().ok()?;
        if last < start {
            return None;
        }
        (last + 1).min(total)
    };
    if start >= total {
        return Some(Err(()));
    }
    Some(Ok((start, end)))
}

fn write_head(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    content_length: usize,
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {content_length}\r\nConnection: close\r\n\r\n"
    ));
    stream.write_all(head.as_bytes())
}

/// A response with a short text body (none for HEAD).
fn write_simple(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(String, String)],
    request: &RecordedRequest,
) {
    let body = format!("{status} {}\n", reason(status));
    if write_head(stream, status, headers, body.len()).is_ok() && request.method != "HEAD" {
        let _ = stream.write_all(body.as_bytes());
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        404 => "Not Found",
        405 => "Method Not Allowed",
        416 => "Range Not Satisfiable",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    //! The server itself, through raw sockets.

    use super::*;

    /// Sends `head` (request line + headers, without the blank line) and returns
    /// (status, headers lowercased, body bytes received before the server closed).
    fn raw(server: &TestServer, head: &str) -> (u16, BTreeMap<String, String>, Vec<u8>) {
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(format!("{head}\r\nHost: {}\r\n\r\n", server.addr()).as_bytes())
            .unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let split = response
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .expect("a response head");
        let head = String::from_utf8(response[..split].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap().split(' ').nth(1).unwrap();
        let headers = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        (
            status.parse().unwrap(),
            headers,
            response[split + 4..].to_vec(),
        )
    }

    fn body() -> Vec<u8> {
        (0..100u8).collect()
    }

    #[test]
    fn serves_the_body_and_ranges() {
        let server = TestServer::start("127.0.0.1", vec![Route::normal("/f", body())]);
        let (status, headers, got) = raw(&server, "GET /f HTTP/1.1");
        assert_eq!((status, got), (200, body()));
        assert_eq!(headers["content-length"], "100");
        assert_eq!(headers["accept-ranges"], "bytes");
        assert_eq!(headers["connection"], "close");

        let (status, headers, got) = raw(&server, "GET /f HTTP/1.1\r\nRange: bytes=90-");
        assert_eq!((status, got), (206, body()[90..].to_vec()));
        assert_eq!(headers["content-range"], "bytes 90-99/100");
        assert_eq!(headers["content-length"], "10");

        let (status, headers, got) = raw(&server, "GET /f HTTP/1.1\r\nRange: bytes=10-19");
        assert_eq!((status, got), (206, body()[10..20].to_vec()));
        assert_eq!(headers["content-range"], "bytes 10-19/100");

        let (status, _, got) = raw(&server, "GET /f HTTP/1.1\r\nRange: bytes=-5");
        assert_eq!((status, got), (206, body()[95..].to_vec()));

        let (status, headers, _) = raw(&server, "GET /f HTTP/1.1\r\nRange: bytes=100-");
        assert_eq!(status, 416);
        assert_eq!(headers["content-range"], "bytes */100");

        let (status, headers, got) = raw(&server, "HEAD /f HTTP/1.1");
        assert_eq!((status, got.len()), (200, 0));
        assert_eq!(headers["content-length"], "100");

        assert_eq!(raw(&server, "GET /nothing HTTP/1.1").0, 404);
        let requests = server.requests_to("/f");
        assert_eq!(requests.len(), 6);
        assert_eq!(requests[1].header("range"), Some("bytes=90-"));
        assert_eq!(
            requests[1].header("Host"),
            Some(&*server.addr().to_string())
        );
    }

    #[test]
    fn drops_mid_body_the_first_times_then_serves() {
        let route = Route::new(
            "/f",
            body(),
            Behaviour::DropAfter {
                bytes: 30,
                times: 2,
            },
        );
        let server = TestServer::start("127.0.0.1", vec![route]);
        // A HEAD does not use up a drop.
        assert_eq!(raw(&server, "HEAD /f HTTP/1.1").0, 200);
        for _ in 0..2 {
            let (status, headers, got) = raw(&server, "GET /f HTTP/1.1");
            assert_eq!((status, got), (200, body()[..30].to_vec()));
            assert_eq!(headers["content-length"], "100");
        }
        let (status, _, got) = raw(&server, "GET /f HTTP/1.1\r\nRange: bytes=30-");
        assert_eq!((status, got), (206, body()[30..].to_vec()));
    }

    #[test]
    fn content_faults() {
        let server = TestServer::start(
            "127.0.0.1",
            vec![
                Route::new("/wrong", body(), Behaviour::WrongBytes),
                Route::new("/extra", body(), Behaviour::ExtraBytes { extra: 7 }),
                Route::new(
                    "/ignore",
                    body(),
                    Behaviour::All(vec![
                        Behaviour::DropAfter { bytes: 1, times: 1 },
                        Behaviour::IgnoreRange,
                    ]),
                ),
            ],
        );
        let (_, _, got) = raw(&server, "GET /wrong HTTP/1.1");
        assert_eq!(got.len(), 100);
        assert_eq!(got.iter().zip(body()).filter(|(a, b)| **a != *b).count(), 1);
        let (_, headers, got) = raw(&server, "GET /extra HTTP/1.1");
        assert_eq!(headers["content-length"], "107");
        assert_eq!(&got[..100], &body()[..]);
        assert_eq!(got.len(), 107);
        assert_eq!(raw(&server, "GET /ignore HTTP/1.1").2.len(), 1);
        let (status, headers, got) = raw(&server, "GET /ignore HTTP/1.1\r\nRange: bytes=1-");
        assert_eq!((status, got), (200, body()));
        assert!(!headers.contains_key("content-range"));
    }

    #[test]
    fn statuses_redirects_and_hub_headers() {
        let server = TestServer::start(
            "127.0.0.2",
            vec![
                Route::new(
                    "/busy",
                    body(),
                    Behaviour::StatusThen {
                        status: 429,
                        times: 2,
                        retry_after: Some(1),
                    },
                ),
                Route::redirect("/a", "/b", 302),
                Route::redirect("/b", "/a", 307).header("X-Test", "yes"),
                Route::new(
                    "/hub",
                    body(),
                    Behaviour::HubResolve {
                        etag: "ab".repeat(32),
                        size: 100,
                        commit: "c".repeat(40),
                    },
                ),
            ],
        );
        assert!(server.base_url().starts_with("http://127.0.0.2:"));
        for _ in 0..2 {
            let (status, headers, _) = raw(&server, "GET /busy HTTP/1.1");
            assert_eq!(status, 429);
            assert_eq!(headers["retry-after"], "1");
        }
        assert_eq!(raw(&server, "GET /busy HTTP/1.1").0, 200);

        let (status, headers, _) = raw(&server, "GET /a HTTP/1.1");
        assert_eq!((status, headers["location"].as_str()), (302, "/b"));
        let (status, headers, _) = raw(&server, "GET /b HTTP/1.1");
        assert_eq!((status, headers["location"].as_str()), (307, "/a"));
        assert_eq!(headers["x-test"], "yes");

        let (status, headers, got) = raw(&server, "GET /hub HTTP/1.1");
        assert_eq!((status, got), (200, body()));
        assert_eq!(headers["x-linked-etag"], format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(headers["x-linked-size"], "100");
        assert_eq!(headers["x-repo-commit"], "c".repeat(40));
    }

    #[test]
    fn a_stall_is_bounded_and_drop_stops_it() {
        let route = Route::new(
            "/slow",
            body(),
            Behaviour::Stall {
                after_bytes: 10,
                millis: 30_000,
                times: 1,
            },
        );
        let server = TestServer::start("127.0.0.1", vec![route]);
        let mut stream = TcpStream::connect(server.addr()).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        stream.write_all(b"GET /slow HTTP/1.1\r\n\r\n").unwrap();
        let mut received = Vec::new();
        let mut buf = [0u8; 256];
        let error = loop {
            match stream.read(&mut buf) {
                Ok(0) => panic!("closed instead of stalling"),
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(error) => break error,
            }
        };
        assert!(matches!(
            error.kind(),
            ErrorKind::WouldBlock | ErrorKind::TimedOut
        ));
        assert!(received.ends_with(&body()[..10]));
        // The second request is not stalled.
        let (status, _, got) = raw(&server, "GET /slow HTTP/1.1");
        assert_eq!((status, got), (200, body()));
        let started = Instant::now();
        drop(server);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
