//! `modelvet fetch` end to end against a real web server: nginx on loopback serves the demo
//! model over HTTPS with a throw-away CA (`tests/nginx/setup.sh`); the fetched files must carry
//! the manifest's digests, and a partial download must resume with a range request (206).
//!
//! Without nginx the test prints a note and passes, except under CI (`CI` set), where nginx
//! must be installed (`.ci/run` installs it).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use modelvet::fetch::place;
use modelvet::manifest::Manifest;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::{fixture, modelvet, root, snakeoil_trust};

/// Longest any one step may take: nginx start-up, or one fetch of the demo model.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running nginx serving one directory; stopped on drop, even when the test panics.
struct Nginx {
    work: PathBuf,
    nginx: PathBuf,
    port: u16,
    ca: PathBuf,
    access_log: PathBuf,
}

impl Nginx {
    fn start(nginx: &Path, serve: &Path, work: &Path) -> Nginx {
        // The guard exists before the start, so a start that fails or hangs still stops nginx.
        let mut guard = Nginx {
            work: work.to_path_buf(),
            nginx: nginx.to_path_buf(),
            port: 0,
            ca: PathBuf::new(),
            access_log: PathBuf::new(),
        };
        let (code, stdout, stderr) = run_bounded(
            Command::new("bash")
                .arg(setup_script())
                .arg("start")
                .arg(serve)
                .arg(work)
                .env("MODELVET_NGINX", nginx)
                .env("MODELVET_NGINX_SCHEME", "https"),
        );
        assert_eq!(
            code, 0,
            "setup.sh start\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        // `key=value` lines; the value runs to the end of the line.
        let value = |key: &str| {
            stdout
                .lines()
                .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
                .map(str::to_owned)
        };
        let port = value("port").and_then(|port| port.parse().ok());
        let (Some(port), Some(ca), Some(access_log)) = (port, value("ca"), value("access_log"))
        else {
            panic!("setup.sh printed no port, ca or access_log:\n{stdout}");
        };
        guard.port = port;
        guard.ca = ca.into();
        guard.access_log = access_log.into();
        guard
    }

    /// `https://127.0.0.1:PORT/`: a file's URL is this followed by its manifest path.
    fn prefix(&self) -> String {
        format!("https://127.0.0.1:{}/", self.port)
    }

    fn access_log(&self) -> String {
        fs::read_to_string(&self.access_log).unwrap_or_default()
    }
}

impl Drop for Nginx {
    // A failed stop is worth a note, never a panic: a panic while the test already unwinds
    // would abort the whole test binary.
    #[allow(clippy::print_stderr)]
    fn drop(&mut self) {
        let stopped = try_run_bounded(
            Command::new("bash")
                .arg(setup_script())
                .arg("stop")
                .arg(&self.work)
                .env("MODELVET_NGINX", &self.nginx),
        );
        match stopped {
            Ok((0, _, _)) => {}
            Ok((code, _, stderr)) => {
                eprintln!(
                    "setup.sh stop {}: exit {code}: {stderr}",
                    self.work.display()
                );
            }
            Err(error) => eprintln!("setup.sh stop {}: {error}", self.work.display()),
        }
    }
}

#[test]
fn fetch_over_https_from_nginx_verifies_and_resumes_with_a_range_request() {
    let Some(nginx) = find_nginx() else {
        assert!(
            std::env::var_os("CI").is_none(),
            "nginx is missing, and CI must have it: `apt-get install nginx` (see .ci/run)"
        );
        eprintln!("note: nginx not found (PATH, /usr/sbin/nginx); skipping the nginx fetch test");
        return;
    };
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let at = |relative: &str| dir.join(relative).display().to_string();
    let model = dir.join("www");
    crate::support::copy_dir(&fixture("demo-model"), &model);
    let server = Nginx::start(&nginx, &model, &dir.join("nginx"));
    let ca = server.ca.display().to_string();

    // A signed release whose files point at the server.
    snakeoil_trust(dir, "snakeoil");
    ok(&[
        "manifest",
        "create",
        &model.display().to_string(),
        "--name",
        "demo/ct-segmenter",
        "--version",
        "1",
        "--expires",
        "2099-01-01T00:00:00Z",
        "--source-prefix",
        &server.prefix(),
        "--out",
        &at("manifest.json"),
    ]);
    ok(&["sign", &at("manifest.json"), "--key", &at("snakeoil.key")]);
    let manifest: Value = serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap())
        .expect("the manifest is JSON");
    let files: Vec<(String, String)> = manifest["files"]
        .as_array()
        .expect("the manifest lists files")
        .iter()
        .map(|file| {
            let path = file["path"].as_str().unwrap().to_owned();
            let urls = file["urls"].as_array().expect("--source-prefix gives urls");
            assert_eq!(urls, &[Value::from(format!("{}{path}", server.prefix()))]);
            (path, file["sha256"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(files.len(), 5, "{manifest:#}");

    // 1. A fresh download.
    let fetch = |dest: &str, state: &str, cache: &str| {
        let (code, stdout, stderr) = run_bounded(
            Command::new(env!("CARGO_BIN_EXE_modelvet"))
                .args(["fetch", &at("manifest.json"), "--trust", &at("trust.json")])
                .args(["--dest", &at(dest), "--ca-cert", &ca])
                .args(["--state", &at(state), "--cache", &at(cache)])
                .args(["--format", "json"])
                .env("NO_COLOR", "1"),
        );
        let context = format!(
            "modelvet fetch into {dest}: exit {code}\nstdout:\n{stdout}\nstderr:\n{stderr}\n\
             nginx access log:\n{}",
            server.access_log()
        );
        assert_eq!(code, 0, "{context}");
        let _: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|error| panic!("the report is not JSON ({error})\n{context}"));
        assert_digests(&dir.join(dest), &files, &context);
    };
    fetch("dest", "state", "cache");

    // 2. A resumed download: the first half of one file is already in the partial area, so
    //    the rest must be asked for with a Range header and served as 206. New state and cache:
    //    nothing may come from the first run. The library names the partial file, so this test
    //    follows its naming rule rather than restating it.
    let resumed = "model.safetensors";
    let parsed = Manifest::parse(&fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    let entry = parsed
        .file(resumed)
        .expect("the demo model has model.safetensors");
    let partial = place::partial_path(&dir.join("dest2").join(place::PARTIAL_DIR), entry);
    fs::create_dir_all(partial.parent().unwrap()).unwrap();
    let bytes = fs::read(model.join(resumed)).unwrap();
    fs::write(&partial, &bytes[..bytes.len() / 2]).unwrap();
    fetch("dest2", "state2", "cache2");
    let log = server.access_log();
    let wanted = format!("206 GET /{resumed} ");
    assert!(
        log.lines().any(|line| line.starts_with(&wanted)),
        "no 206 for `/{resumed}` in nginx's access log \
         (format: STATUS METHOD URI BYTES \"RANGE\"):\n{log}"
    );
}

/// nginx on PATH, else where Debian puts it (`/usr/sbin` is not on every user's PATH).
fn find_nginx() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("nginx"))
            .find(|candidate| candidate.is_file())
    });
    on_path.or_else(|| {
        let sbin = PathBuf::from("/usr/sbin/nginx");
        sbin.is_file().then_some(sbin)
    })
}

fn setup_script() -> PathBuf {
    root().join("tests/nginx/setup.sh")
}

fn ok(args: &[&str]) -> String {
    let (code, stdout, stderr) = modelvet(args);
    assert_eq!(
        code, 0,
        "modelvet {args:?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    stdout
}

/// Every regular file under `dest` (the partial-download directory aside) is one of `files`
/// with its digest, and every one of `files` is there.
fn assert_digests(dest: &Path, files: &[(String, String)], context: &str) {
    let mut found = Vec::new();
    walk(dest, dest, &mut found);
    found.sort();
    let mut expected: Vec<(String, String)> = files
        .iter()
        .map(|(path, digest)| {
            let hex = digest.strip_prefix("sha256:").unwrap_or(digest.as_str());
            (path.clone(), hex.to_owned())
        })
        .collect();
    expected.sort();
    assert_eq!(
        found,
        expected,
        "files and digests in {}\n{context}",
        dest.display()
    );
}

fn walk(root: &Path, dir: &Path, found: &mut Vec<(String, String)>) {
    for entry in fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            if entry.file_name() != ".modelvet-partial" {
                walk(root, &path, found);
            }
        } else {
            assert!(kind.is_file(), "not a regular file: {}", path.display());
            let relative = path.strip_prefix(root).unwrap();
            let digest = Sha256::digest(fs::read(&path).unwrap());
            let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
            found.push((relative.display().to_string(), hex));
        }
    }
}

/// Runs `command` to completion or kills it after `STEP_TIMEOUT`; returns exit code, stdout,
/// stderr.
fn run_bounded(command: &mut Command) -> (i32, String, String) {
    try_run_bounded(command).unwrap_or_else(|error| panic!("{error}"))
}

/// [`run_bounded`] without panics, for `Drop`. Output is drained on threads so a chatty child
/// cannot block on a full pipe.
fn try_run_bounded(command: &mut Command) -> Result<(i32, String, String), String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|error| format!("{command:?}: {error}"))?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|pipe| Box::new(pipe) as _));
    let stderr = drain(child.stderr.take().map(|pipe| Box::new(pipe) as _));
    let deadline = Instant::now() + STEP_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            Ok(None) => break Err(format!("took longer than {STEP_TIMEOUT:?}")),
            Err(error) => break Err(error.to_string()),
        }
    };
    if status.is_err() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        Ok(status) => Ok((status.code().unwrap_or(-1), stdout, stderr)),
        Err(error) => Err(format!(
            "{command:?}: {error}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        )),
    }
}
