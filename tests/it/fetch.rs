//! `modelvet fetch` against loopback servers that misbehave on purpose (see `server.rs`).
//!
//! Every test builds a signed release of the demo model whose `urls` point at its server(s),
//! fetches it into a fresh destination and asserts the exit code, the JSON report and, after
//! every fetch, the invariants that must hold whatever the network did:
//! - a file at a final path in DEST is a manifest file with the manifest's SHA-256;
//! - a file the report does not accept is not at its final path; on exit 0 every manifest
//!   file is in place and the partial area `DEST/.modelvet-partial/` is gone.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::server::{Behaviour, Route, TestServer};
use crate::support::{fixture, modelvet, snakeoil_trust};

/// The demo model's files, in manifest order.
const FILES: [&str; 3] = ["README.md", "config.json", "model.safetensors"];
/// The file most tests break (the largest: 672 bytes).
const WEIGHTS: &str = "model.safetensors";
/// Where the partial downloads live inside DEST.
const PARTIAL: &str = ".modelvet-partial";
/// A fetch that takes longer than this is killed and the test fails.
const HARD_LIMIT: Duration = Duration::from_secs(30);
/// Every test's fetches must finish well within this.
const QUICK: Duration = Duration::from_secs(9);
/// A pinned hub revision.
const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";
const HF_TOKEN: &str = "hf_snakeoil_token";

/// The bytes of a demo-model file.
fn demo(file: &str) -> Vec<u8> {
    fs::read(fixture("demo-model").join(file)).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// One route per demo file under `dir` (e.g. `/m`), each with the behaviour `pick` gives it.
fn routes(dir: &str, pick: impl Fn(&str) -> Behaviour) -> Vec<Route> {
    FILES
        .iter()
        .map(|file| Route::new(&format!("{dir}/{file}"), demo(file), pick(file)))
        .collect()
}

/// `behaviour` for the weights, normal for the other files.
fn weights_only(behaviour: Behaviour) -> impl Fn(&str) -> Behaviour {
    move |file| {
        if file == WEIGHTS {
            behaviour.clone()
        } else {
            Behaviour::Normal
        }
    }
}

/// A release made through the CLI whose files list `prefixes` as sources, in order.
struct Release {
    _temp: tempfile::TempDir,
    root: PathBuf,
}

/// What one `modelvet fetch` did.
struct Fetched {
    code: i32,
    /// `Value::Null` when the exit code is 2 (no report then).
    report: Value,
    stderr: String,
    elapsed: Duration,
    dest: PathBuf,
}

impl Release {
    fn new(prefixes: &[String]) -> Release {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().to_path_buf();
        let model = root.join("model");
        fs::create_dir_all(&model).unwrap();
        for file in FILES {
            fs::write(model.join(file), demo(file)).unwrap();
        }
        let release = Release { _temp: temp, root };
        snakeoil_trust(&release.root, "snakeoil-a");
        let (model, out) = (release.path("model"), release.path("manifest.json"));
        let mut args = vec![
            "manifest",
            "create",
            &model,
            "--name",
            "demo/ct-segmenter",
            "--version",
            "1",
            "--expires",
            "2099-01-01T00:00:00Z",
            "--out",
            &out,
        ];
        for prefix in prefixes {
            args.extend(["--source-prefix", prefix.as_str()]);
        }
        release.ok(&args);
        release.ok(&[
            "sign",
            &release.path("manifest.json"),
            "--key",
            &release.path("snakeoil-a.key"),
        ]);
        release
    }

    fn path(&self, relative: &str) -> String {
        self.root.join(relative).display().to_string()
    }

    fn ok(&self, args: &[&str]) {
        let (code, stdout, stderr) = modelvet(args);
        assert_eq!(
            code, 0,
            "modelvet {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }

    /// `path -> sha256 hex` from the signed manifest.
    fn digests(&self) -> BTreeMap<String, String> {
        let manifest: Value =
            serde_json::from_slice(&fs::read(self.root.join("manifest.json")).unwrap()).unwrap();
        manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|file| {
                (
                    file["path"].as_str().unwrap().to_owned(),
                    file["sha256"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Fetches the local manifest into the new, empty directory `dest` (relative to the
    /// release) with a private state and cache, then checks the invariants.
    fn fetch(&self, dest: &str, env: &[(&str, &str)], extra: &[&str]) -> Fetched {
        let manifest = self.path("manifest.json");
        self.fetch_manifest(&manifest, dest, env, extra)
    }

    /// Like [`Release::fetch`] with MANIFEST as given (a path or a URL).
    fn fetch_manifest(
        &self,
        manifest: &str,
        dest: &str,
        env: &[(&str, &str)],
        extra: &[&str],
    ) -> Fetched {
        let dest = self.root.join(dest);
        fs::create_dir_all(&dest).unwrap();
        let (dest_arg, trust) = (dest.display().to_string(), self.path("trust.json"));
        let mut args = vec![
            "fetch", manifest, "--trust", &trust, "--dest", &dest_arg, "--format", "json",
        ];
        args.extend_from_slice(extra);
        // Defaults that keep a failing fetch short, unless the test chose otherwise.
        let (state, cache) = (self.path("state"), self.path("cache"));
        let defaults = [
            ("--state", state.as_str()),
            ("--cache", cache.as_str()),
            ("--retries", "3"),
            ("--read-timeout", "2"),
            ("--connect-timeout", "2"),
        ];
        for (flag, value) in defaults {
            let chosen =
                extra.contains(&flag) || (flag == "--cache" && extra.contains(&"--no-cache"));
            if !chosen {
                args.extend([flag, value]);
            }
        }
        let (code, stdout, stderr, elapsed) = run_bounded(&args, env);
        let report = if code == 2 {
            assert!(stdout.is_empty(), "{stdout}");
            Value::Null
        } else {
            serde_json::from_str(&stdout).unwrap_or_else(|error| {
                panic!("exit {code}, stdout is not JSON ({error}):\n{stdout}\nstderr:\n{stderr}")
            })
        };
        let fetched = Fetched {
            code,
            report,
            stderr,
            elapsed,
            dest,
        };
        self.assert_invariants(&fetched);
        fetched
    }

    fn assert_invariants(&self, fetched: &Fetched) {
        let digests = self.digests();
        let context = fetched.context();
        // Whatever is outside the partial area is a manifest file with the signed digest.
        for (relative, path) in walk(&fetched.dest) {
            if relative == PARTIAL || relative.starts_with(&format!("{PARTIAL}/")) {
                continue;
            }
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                continue;
            }
            assert!(
                meta.is_file(),
                "`{relative}` is not a regular file\n{context}"
            );
            let expected = digests
                .get(&relative)
                .unwrap_or_else(|| panic!("`{relative}` is not a manifest file\n{context}"));
            assert_eq!(
                &sha256_hex(&fs::read(&path).unwrap()),
                expected,
                "`{relative}` has other bytes than the manifest says\n{context}"
            );
        }
        // A file the report does not accept is not in place; an accepted one is.
        if let Some(files) = fetched.report["files"].as_array() {
            for file in files {
                let path = file["path"].as_str().unwrap();
                let placed = fetched.dest.join(path).is_file();
                match file["verdict"].as_str().unwrap() {
                    "accept" | "warn" => {
                        assert!(placed, "`{path}` accepted, not placed\n{context}")
                    }
                    _ => assert!(!placed, "`{path}` not accepted, yet placed\n{context}"),
                }
            }
        }
        if fetched.code == 0 {
            assert_eq!(fetched.report["command"], "fetch", "{context}");
            assert_ne!(fetched.report["verdict"], "reject", "{context}");
            for path in digests.keys() {
                assert!(
                    fetched.dest.join(path).is_file(),
                    "`{path}` missing\n{context}"
                );
            }
            assert!(
                !fetched.dest.join(PARTIAL).exists(),
                "the partial area is left behind: {:?}\n{context}",
                walk(&fetched.dest.join(PARTIAL))
            );
        }
        if fetched.code == 1 {
            assert_eq!(fetched.report["verdict"], "reject", "{context}");
        }
    }
}

impl Fetched {
    fn context(&self) -> String {
        format!(
            "exit {} after {:?}\nreport: {:#}\nstderr:\n{}",
            self.code, self.elapsed, self.report, self.stderr
        )
    }

    fn assert_exit(&self, code: i32) {
        assert_eq!(self.code, code, "{}", self.context());
        assert!(self.elapsed < QUICK, "too slow\n{}", self.context());
    }

    /// The codes of one file's findings.
    fn file_codes(&self, path: &str) -> Vec<String> {
        let file = self.report["files"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|file| file["path"] == path)
            .unwrap_or_else(|| panic!("no `{path}` in the report\n{}", self.context()));
        codes_of(&file["findings"])
    }

    /// Asserts that `path` was refused with `code` among its findings.
    fn assert_file_refused(&self, path: &str, code: &str) {
        assert!(
            self.file_codes(path).iter().any(|found| found == code),
            "expected `{code}` on `{path}`\n{}",
            self.context()
        );
        assert!(!self.dest.join(path).exists(), "{}", self.context());
    }

    /// Asserts that every file other than `except` is in place.
    fn assert_placed_except(&self, except: &str) {
        for file in FILES.iter().filter(|file| **file != except) {
            assert!(
                self.dest.join(file).is_file(),
                "`{file}`\n{}",
                self.context()
            );
        }
    }
}

fn codes_of(findings: &Value) -> Vec<String> {
    findings
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|finding| finding["code"].as_str().map(str::to_owned))
        .collect()
}

/// Every path under `dir` as (`/`-separated relative path, full path); empty if `dir` is
/// absent. Does not follow symlinks.
fn walk(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let Ok(entries) = fs::read_dir(&current) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(dir).unwrap();
            let relative = relative
                .components()
                .map(|part| part.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                pending.push(path.clone());
            }
            found.push((relative, path));
        }
    }
    found
}

/// Runs `modelvet` with a clean network environment plus `env`; kills it after
/// [`HARD_LIMIT`] so that no test hangs. Returns exit code, stdout, stderr, duration.
fn run_bounded(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String, Duration) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_modelvet"));
    command.args(args).env("NO_COLOR", "1");
    for name in [
        "HF_TOKEN",
        "HF_ENDPOINT",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_OFFLINE",
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied());
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("modelvet runs");
    let drain = |mut pipe: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > HARD_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "modelvet {args:?} still running after {HARD_LIMIT:?}\nstderr:\n{}",
                stderr.join().unwrap()
            );
        }
        thread::sleep(Duration::from_millis(20));
    };
    let elapsed = started.elapsed();
    (
        status.code().expect("exited normally"),
        stdout.join().unwrap(),
        stderr.join().unwrap(),
        elapsed,
    )
}

fn prefix(server: &TestServer, dir: &str) -> String {
    server.url(&format!("{dir}/"))
}

#[test]
fn a_clean_server_delivers_the_release() {
    let server = TestServer::start("127.0.0.1", routes("/m", |_| Behaviour::Normal));
    let release = Release::new(&[prefix(&server, "/m")]);
    let fetched = release.fetch("dest", &[], &[]);
    fetched.assert_exit(0);
    assert_eq!(fetched.report["verdict"], "accept", "{}", fetched.context());
    assert_eq!(
        fetched.report["files"].as_array().unwrap().len(),
        FILES.len()
    );
    for file in FILES {
        assert_eq!(fs::read(fetched.dest.join(file)).unwrap(), demo(file));
        assert!(server
            .requests_to(&format!("/m/{file}"))
            .iter()
            .any(|request| request.method == "GET"));
    }
}

#[test]
fn a_download_dropped_mid_body_resumes_with_a_range_request() {
    let drop = |_: &str| Behaviour::DropAfter {
        bytes: 100,
        times: 1,
    };
    let server = TestServer::start("127.0.0.1", routes("/m", drop));
    let release = Release::new(&[prefix(&server, "/m")]);
    let fetched = release.fetch("dest", &[], &[]);
    fetched.assert_exit(0);
    for file in FILES {
        let resumed = server
            .requests_to(&format!("/m/{file}"))
            .iter()
            .filter_map(|request| request.header("range").map(str::to_owned))
            .collect::<Vec<_>>();
        assert!(
            resumed
                .iter()
                .any(|range| range.starts_with("bytes=") && range != "bytes=0-"),
            "`{file}` was not resumed: ranges {resumed:?}\n{}",
            fetched.context()
        );
    }
}

#[test]
fn a_range_request_answered_with_200_restarts_from_zero() {
    let ignore = |_: &str| {
        Behaviour::All(vec![
            Behaviour::DropAfter {
                bytes: 100,
                times: 1,
            },
            Behaviour::IgnoreRange,
        ])
    };
    let server = TestServer::start("127.0.0.1", routes("/m", ignore));
    let release = Release::new(&[prefix(&server, "/m")]);
    let fetched = release.fetch("dest", &[], &[]);
    fetched.assert_exit(0);
    for file in FILES {
        assert_eq!(fs::read(fetched.dest.join(file)).unwrap(), demo(file));
    }
    assert!(
        server
            .requests()
            .iter()
            .any(|request| request.header("range").is_some()),
        "no resume was tried\n{}",
        fetched.context()
    );
}

#[test]
fn wrong_bytes_are_refused_and_the_next_mirror_is_tried() {
    // The only source serves a flipped byte.
    let bad = TestServer::start(
        "127.0.0.1",
        routes("/m", weights_only(Behaviour::WrongBytes)),
    );
    let release = Release::new(&[prefix(&bad, "/m")]);
    let fetched = release.fetch("dest", &[], &[]);
    fetched.assert_exit(1);
    fetched.assert_file_refused(WEIGHTS, "download-failed");
    fetched.assert_placed_except(WEIGHTS);

    // A good second mirror (another host) saves the day.
    let good = TestServer::start("127.0.0.2", routes("/m", |_| Behaviour::Normal));
    let release = Release::new(&[prefix(&bad, "/m"), prefix(&good, "/m")]);
    let fetched = release.fetch("dest", &[], &[]);
    fetched.assert_exit(0);
    assert!(!good.requests_to(&format!("/m/{WEIGHTS}")).is_empty());
}

#[test]
fn more_bytes_than_the_signed_size_are_refused_and_the_next_mirror_is_tried() {
    let long = TestServer::start(
        "127.0.0.1",
        routes("/m", weights_only(Behaviour::ExtraBytes { extra: 4096 })),
    );
    let release = Release::new(&[prefix(&long, "/m")]);
    let fetched = release.fetch("dest", &[], &[]);
    fetched.assert_exit(1);
    fetched.assert_file_refused(WEIGHTS, "download-failed");
    fetched.assert_placed_except(WEIGHTS);

    let good = TestServer::start("127.0.0.2", routes("/m", |_| Behaviour::Normal));
    let release = Release::new(&[prefix(&long, "/m"), prefix(&good, "/m")]);
    release.fetch("dest", &[], &[]).assert_exit(0);
    assert!(!good.requests_to(&format!("/m/{WEIGHTS}")).is_empty());
}

#[test]
fn a_stalled_server_times_out_and_a_single_stall_is_retried() {
    // Stalls forever (as far as the client can tell): refused within a few seconds.
    let stall = |times| Behaviour::Stall {
        after_bytes: 100,
        millis: 20_000,
        times,
    };
    let server = TestServer::start("127.0.0.1", routes("/m", weights_only(stall(usize::MAX))));
    let release = Release::new(&[prefix(&server, "/m")]);
    let fetched = release.fetch("dest", &[], &["--read-timeout", "1", "--retries", "1"]);
    fetched.assert_exit(1);
    fetched.assert_file_refused(WEIGHTS, "download-failed");
    fetched.assert_placed_except(WEIGHTS);

    // Stalls once: the retry succeeds.
    let server = TestServer::start("127.0.0.1", routes("/m", weights_only(stall(1))));
    let release = Release::new(&[prefix(&server, "/m")]);
    let fetched = release.fetch("dest", &[], &["--read-timeout", "1"]);
    fetched.assert_exit(0);
}

#[test]
fn server_errors_are_retried() {
    let fail = Behaviour::StatusThen {
        status: 500,
        times: 2,
        retry_after: None,
    };
    let server = TestServer::start("127.0.0.1", routes("/m", weights_only(fail)));
    let release = Release::new(&[prefix(&server, "/m")]);
    let fetched = release.fetch("dest", &[], &[]);
    fetched.assert_exit(0);
    assert!(server.requests_to(&format!("/m/{WEIGHTS}")).len() >= 3);
}

#[test]
fn too_many_requests_waits_for_retry_after() {
    let busy = Behaviour::StatusThen {
        status: 429,
        times: 1,
        retry_after: Some(1),
    };
    let server = TestServer::start("127.0.0.1", routes("/m", weights_only(busy)));
    let release = Release::new(&[prefix(&server, "/m")]);
    let fetched = release.fetch("dest", &[], &[]);
    fetched.assert_exit(0);
    let requests = server.requests_to(&format!("/m/{WEIGHTS}"));
    assert!(requests.len() >= 2, "{requests:?}");
    let waited = requests[1].at.duration_since(requests[0].at);
    assert!(
        waited >= Duration::from_millis(900),
        "retried after {waited:?} despite Retry-After: 1\n{}",
        fetched.context()
    );
}

#[test]
fn a_redirect_loop_fails() {
    let mut routes = routes("/m", weights_only(Behaviour::Normal));
    routes.retain(|route| route.path != format!("/m/{WEIGHTS}"));
    routes.push(Route::redirect(
        &format!("/m/{WEIGHTS}"),
        &format!("/loop/{WEIGHTS}"),
        302,
    ));
    routes.push(Route::redirect(
        &format!("/loop/{WEIGHTS}"),
        &format!("/m/{WEIGHTS}"),
        301,
    ));
    let server = TestServer::start("127.0.0.1", routes);
    let release = Release::new(&[prefix(&server, "/m")]);
    let fetched = release.fetch("dest", &[], &[]);
    fetched.assert_exit(1);
    fetched.assert_file_refused(WEIGHTS, "download-failed");
    fetched.assert_placed_except(WEIGHTS);
    let hops = server.requests_to(&format!("/m/{WEIGHTS}")).len()
        + server.requests_to(&format!("/loop/{WEIGHTS}")).len();
    assert!(hops < 100, "{hops} requests for one file");
}

#[test]
fn plain_http_is_refused_to_hosts_other_than_loopback() {
    // TEST-NET-1: never routed, so a client that tried would wait for its connect timeout.
    let remote = "http://192.0.2.1:9/m/";
    let release = Release::new(&[remote.to_owned()]);
    let fetched = release.fetch("dest", &[], &[]);
    fetched.assert_exit(1);
    for file in FILES {
        assert!(
            fetched
                .file_codes(file)
                .iter()
                .any(|code| code == "source-refused"),
            "`{file}`\n{}",
            fetched.context()
        );
    }
    assert!(
        fetched.elapsed < Duration::from_secs(5),
        "{}",
        fetched.context()
    );

    // The refused source is skipped for the next mirror.
    let good = TestServer::start("127.0.0.1", routes("/m", |_| Behaviour::Normal));
    let release = Release::new(&[remote.to_owned(), prefix(&good, "/m")]);
    release.fetch("dest", &[], &[]).assert_exit(0);
}

/// Routes of a hub at `/ORG/REPO/resolve/COMMIT/FILE` for the demo files.
fn hub_path(file: &str) -> String {
    format!("/demo/ct-segmenter/resolve/{COMMIT}/{file}")
}

fn hub_prefix() -> String {
    format!("hf://demo/ct-segmenter@{COMMIT}/")
}

#[test]
fn hub_sources_send_the_token_and_check_the_linked_headers() {
    let hub_routes = |lie: &dyn Fn(&mut String, &mut u64, &mut String)| {
        FILES
            .iter()
            .map(|file| {
                let body = demo(file);
                let (mut etag, mut size, mut commit) =
                    (sha256_hex(&body), body.len() as u64, COMMIT.to_owned());
                if *file == WEIGHTS {
                    lie(&mut etag, &mut size, &mut commit);
                }
                Route::new(
                    &hub_path(file),
                    body,
                    Behaviour::HubResolve { etag, size, commit },
                )
            })
            .collect::<Vec<_>>()
    };
    // Truthful headers: fetched, with the token sent to the hub.
    let hub = TestServer::start("127.0.0.1", hub_routes(&|_, _, _| {}));
    // The release names no host: HF_ENDPOINT says where the hub is.
    let release = Release::new(&[hub_prefix()]);
    let endpoint = hub.base_url();
    let env = [("HF_ENDPOINT", endpoint.as_str()), ("HF_TOKEN", HF_TOKEN)];
    release.fetch("dest", &env, &[]).assert_exit(0);
    for file in FILES {
        let requests = hub.requests_to(&hub_path(file));
        assert!(!requests.is_empty(), "`{file}` not asked of the hub");
        for request in requests {
            assert_eq!(
                request.header("authorization"),
                Some(&*format!("Bearer {HF_TOKEN}"))
            );
        }
    }

    // Headers that disagree with the manifest: refused even though the body is right.
    type Lie = fn(&mut String, &mut u64, &mut String);
    let lies: [(&str, Lie); 3] = [
        ("size", |_, size, _| *size += 1),
        ("etag", |etag, _, _| *etag = "0".repeat(64)),
        ("commit", |_, _, commit| *commit = "f".repeat(40)),
    ];
    for (name, lie) in lies {
        let hub = TestServer::start("127.0.0.1", hub_routes(&lie));
        let endpoint = hub.base_url();
        let env = [("HF_ENDPOINT", endpoint.as_str()), ("HF_TOKEN", HF_TOKEN)];
        let fetched = release.fetch(&format!("dest-{name}"), &env, &["--no-cache"]);
        assert_eq!(fetched.code, 1, "wrong {name}\n{}", fetched.context());
        fetched.assert_file_refused(WEIGHTS, "source-mismatch");
        fetched.assert_placed_except(WEIGHTS);
    }
}

#[test]
fn credentials_are_not_forwarded_to_another_host() {
    // The hub redirects to a CDN on another host, as huggingface.co does for LFS files.
    let cdn = TestServer::start("127.0.0.2", routes("/cdn", |_| Behaviour::Normal));
    let hub = TestServer::start(
        "127.0.0.1",
        FILES
            .iter()
            .map(|file| {
                let body = demo(file);
                Route::redirect(&hub_path(file), &cdn.url(&format!("/cdn/{file}")), 302)
                    .header("X-Linked-Etag", &format!("\"{}\"", sha256_hex(&body)))
                    .header("X-Linked-Size", &body.len().to_string())
                    .header("X-Repo-Commit", COMMIT)
            })
            .collect(),
    );
    let release = Release::new(&[hub_prefix()]);
    let endpoint = hub.base_url();
    let env = [("HF_ENDPOINT", endpoint.as_str()), ("HF_TOKEN", HF_TOKEN)];
    let fetched = release.fetch("dest", &env, &[]);
    fetched.assert_exit(0);
    assert!(hub
        .requests()
        .iter()
        .all(|request| request.header("authorization").is_some()));
    let cdn_requests = cdn.requests();
    for file in FILES {
        assert!(
            cdn_requests
                .iter()
                .any(|request| request.path == format!("/cdn/{file}")),
            "the redirect for `{file}` was not followed\n{}",
            fetched.context()
        );
    }
    for request in cdn_requests {
        assert_eq!(request.header("authorization"), None, "{request:?}");
        assert_eq!(request.header("cookie"), None, "{request:?}");
    }
}

#[test]
fn manifest_and_signature_can_be_fetched_by_url_and_are_verified_first() {
    let files = TestServer::start("127.0.0.1", routes("/m", |_| Behaviour::Normal));
    let release = Release::new(&[prefix(&files, "/m")]);
    let manifest = fs::read(release.root.join("manifest.json")).unwrap();
    let signature = fs::read(release.root.join("manifest.json.sig")).unwrap();
    // Another release's signature over other bytes.
    let other = Release::new(&[prefix(&files, "/other")]);
    let wrong_signature = fs::read(other.root.join("manifest.json.sig")).unwrap();
    let meta = TestServer::start(
        "127.0.0.2",
        vec![
            Route::normal("/release/manifest.json", manifest),
            Route::normal("/release/manifest.json.sig", signature),
            Route::normal("/release/wrong.sig", wrong_signature),
        ],
    );
    let url = meta.url("/release/manifest.json");

    // A signature that does not verify: refused before any file is asked for.
    let bad = meta.url("/release/wrong.sig");
    let fetched = release.fetch_manifest(&url, "refused", &[], &["--signature", &bad]);
    fetched.assert_exit(1);
    assert!(files.requests().is_empty(), "{:?}", files.requests());
    assert!(walk(&fetched.dest).is_empty(), "{:?}", walk(&fetched.dest));

    let good = meta.url("/release/manifest.json.sig");
    release
        .fetch_manifest(&url, "dest", &[], &["--signature", &good])
        .assert_exit(0);
}

#[test]
fn a_second_fetch_is_served_from_the_cache() {
    let server = TestServer::start("127.0.0.1", routes("/m", |_| Behaviour::Normal));
    let release = Release::new(&[prefix(&server, "/m")]);
    release.fetch("first", &[], &[]).assert_exit(0);
    drop(server);
    // Nobody listens on that port any more: only the cache can deliver.
    release.fetch("second", &[], &[]).assert_exit(0);

    // A cache whose bytes were altered is not trusted: with no source left, nothing is placed.
    for (_, path) in walk(&release.root.join("cache")) {
        if fs::symlink_metadata(&path).unwrap().is_file() {
            let mut bytes = fs::read(&path).unwrap();
            if let Some(byte) = bytes.get_mut(0) {
                *byte ^= 0x01;
                fs::write(&path, bytes).unwrap();
            }
        }
    }
    let fetched = release.fetch("third", &[], &[]);
    fetched.assert_exit(1);
    for file in FILES {
        assert!(!fetched.dest.join(file).exists(), "{}", fetched.context());
    }
}

#[test]
fn offline_with_an_empty_cache_fails_without_touching_the_network() {
    let server = TestServer::start("127.0.0.1", routes("/m", |_| Behaviour::Normal));
    let release = Release::new(&[prefix(&server, "/m")]);
    let fetched = release.fetch("dest", &[], &["--offline"]);
    fetched.assert_exit(1);
    assert!(server.requests().is_empty(), "{:?}", server.requests());
    for file in FILES {
        assert!(!fetched.dest.join(file).exists(), "{}", fetched.context());
    }
}

#[test]
fn a_hub_repository_is_imported_signed_and_fetched() {
    // The hub lists LFS files with their SHA-256; small files are downloaded and hashed.
    let weights = demo(WEIGHTS);
    let listing = serde_json::json!([
        {"type": "file", "path": "README.md", "size": demo("README.md").len(), "oid": "x"},
        {"type": "file", "path": "config.json", "size": demo("config.json").len(), "oid": "y"},
        {"type": "directory", "path": "sub", "oid": "z"},
        {"type": "file", "path": WEIGHTS, "size": 134, "oid": "w",
         "lfs": {"oid": sha256_hex(&weights), "size": weights.len(), "pointerSize": 134}},
        {"type": "file", "path": "pytorch_model.bin", "size": 134, "oid": "p",
         "lfs": {"oid": "ab".repeat(32), "size": 1000, "pointerSize": 134}},
    ]);
    let mut hub_routes = vec![Route::normal(
        &format!("/api/models/demo/ct-segmenter/tree/{COMMIT}"),
        serde_json::to_vec(&listing).unwrap(),
    )];
    for file in FILES {
        let body = demo(file);
        let (etag, size) = (sha256_hex(&body), body.len() as u64);
        let commit = COMMIT.to_owned();
        hub_routes.push(Route::new(
            &hub_path(file),
            body,
            Behaviour::HubResolve { etag, size, commit },
        ));
    }
    let hub = TestServer::start("127.0.0.1", hub_routes);
    let endpoint = hub.base_url();
    let env = [("HF_ENDPOINT", endpoint.as_str()), ("HF_TOKEN", HF_TOKEN)];

    let work = tempfile::tempdir().unwrap();
    let path = |name: &str| work.path().join(name).display().to_string();
    let repo = format!("demo/ct-segmenter@{COMMIT}");
    let (code, stdout, stderr, _) = run_bounded(
        &[
            "manifest",
            "import-hf",
            &repo,
            "--expires",
            "2099-01-01T00:00:00Z",
            "--out",
            &path("manifest.json"),
        ],
        &env,
    );
    // The pickle checkpoint is a policy violation: reported, left out, exit 1.
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("pytorch_model.bin") && stdout.contains("pickle-format"),
        "{stdout}"
    );
    let manifest: Value =
        serde_json::from_slice(&fs::read(path("manifest.json")).unwrap()).unwrap();
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(files.len(), 3, "{manifest:#}");
    assert_eq!(manifest["annotations"]["source_revision"], COMMIT);
    for file in files {
        let name = file["path"].as_str().unwrap();
        assert_eq!(file["sha256"], sha256_hex(&demo(name)), "{name}");
        assert_eq!(
            file["urls"][0],
            format!("hf://demo/ct-segmenter@{COMMIT}/{name}")
        );
    }
    assert_eq!(
        files.iter().find(|f| f["path"] == WEIGHTS).unwrap()["format"],
        "safetensors"
    );

    // Reviewed and signed, the draft fetches from the hub.
    let ok = |args: &[&str]| {
        let (code, stdout, stderr, _) = run_bounded(args, &env);
        assert_eq!(code, 0, "{args:?}\n{stdout}\n{stderr}");
    };
    snakeoil_trust(work.path(), "snakeoil");
    ok(&[
        "sign",
        &path("manifest.json"),
        "--key",
        &path("snakeoil.key"),
    ]);
    ok(&[
        "fetch",
        &path("manifest.json"),
        "--trust",
        &path("trust.json"),
        "--dest",
        &path("dest"),
        "--state",
        &path("state"),
        "--no-cache",
    ]);
    assert_eq!(
        fs::read(work.path().join("dest").join(WEIGHTS)).unwrap(),
        weights
    );

    // A branch name is not a pinned revision.
    let (code, _, stderr, _) = run_bounded(
        &[
            "manifest",
            "import-hf",
            "demo/ct-segmenter@main",
            "--out",
            &path("other.json"),
        ],
        &env,
    );
    assert_eq!(code, 2, "{stderr}");
}

/// A release of one 3.5 MiB file with 1 MiB chunk digests, served by `routes_for(body)`.
fn chunked_release(work: &Path, body: &[u8], prefix: &str) {
    fs::create_dir_all(work.join("model")).unwrap();
    fs::write(work.join("model/weights.bin"), body).unwrap();
    let path = |name: &str| work.join(name).display().to_string();
    snakeoil_trust(work, "snakeoil");
    for args in [
        vec![
            "manifest",
            "create",
            &path("model"),
            "--name",
            "demo/chunked",
            "--version",
            "1",
            "--expires",
            "2099-01-01T00:00:00Z",
            "--chunk-size",
            "1048576",
            "--source-prefix",
            prefix,
            "--out",
            &path("manifest.json"),
        ],
        vec![
            "sign",
            &path("manifest.json"),
            "--key",
            &path("snakeoil.key"),
        ],
    ] {
        let (code, stdout, stderr, _) = run_bounded(&args, &[]);
        assert_eq!(code, 0, "{args:?}\n{stdout}\n{stderr}");
    }
}

fn fetch_chunked(work: &Path, dest: &str) -> (i32, String) {
    let path = |name: &str| work.join(name).display().to_string();
    let (code, stdout, stderr, _) = run_bounded(
        &[
            "fetch",
            &path("manifest.json"),
            "--trust",
            &path("trust.json"),
            "--dest",
            &path(dest),
            "--state",
            &path("state"),
            "--no-cache",
            "--retries",
            "3",
            "--read-timeout",
            "2",
            "--format",
            "json",
        ],
        &[],
    );
    (code, format!("{stdout}\n{stderr}"))
}

#[test]
fn files_with_chunk_digests_arrive_as_parallel_verified_ranges() {
    let body: Vec<u8> = (0..(3 << 20) + (1 << 19))
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let server = TestServer::start(
        "127.0.0.1",
        vec![Route::new(
            "/c/weights.bin",
            body.clone(),
            Behaviour::DropAfter {
                bytes: 1000,
                times: 2,
            },
        )],
    );
    let work = tempfile::tempdir().unwrap();
    chunked_release(work.path(), &body, &prefix(&server, "/c"));
    let (code, output) = fetch_chunked(work.path(), "dest");
    assert_eq!(code, 0, "{output}");
    assert_eq!(
        fs::read(work.path().join("dest/weights.bin")).unwrap(),
        body
    );
    let ranges: Vec<String> = server
        .requests_to("/c/weights.bin")
        .iter()
        .filter_map(|request| request.header("range").map(str::to_owned))
        .collect();
    // Four chunks, each asked for as a bounded range (two of them twice after a drop).
    assert!(
        ranges.iter().any(|range| range == "bytes=3145728-3670015"),
        "{ranges:?}"
    );
    assert!(ranges.len() >= 4, "{ranges:?}");

    // A server that ignores ranges still delivers, through one stream.
    let plain = TestServer::start(
        "127.0.0.1",
        vec![Route::new(
            "/c/weights.bin",
            body.clone(),
            Behaviour::IgnoreRange,
        )],
    );
    let work = tempfile::tempdir().unwrap();
    chunked_release(work.path(), &body, &prefix(&plain, "/c"));
    let (code, output) = fetch_chunked(work.path(), "dest");
    assert_eq!(code, 0, "{output}");
    assert_eq!(
        fs::read(work.path().join("dest/weights.bin")).unwrap(),
        body
    );

    // Wrong bytes in one chunk: refused, nothing placed.
    let wrong = TestServer::start(
        "127.0.0.1",
        vec![Route::new(
            "/c/weights.bin",
            body.clone(),
            Behaviour::WrongBytes,
        )],
    );
    let work = tempfile::tempdir().unwrap();
    chunked_release(work.path(), &body, &prefix(&wrong, "/c"));
    let (code, output) = fetch_chunked(work.path(), "dest");
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("download-failed"), "{output}");
    assert!(!work.path().join("dest/weights.bin").exists());
}
