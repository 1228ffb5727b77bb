//! A progress bar on stderr for long hashing: bytes done, total, rate. Drawn only on a
//! terminal; on a pipe nothing is drawn (the report is the summary).

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use modelvet::digest::Progress;

/// Counts bytes from any thread; a ticker thread redraws the bar.
pub struct ProgressBar {
    state: Arc<State>,
    ticker: Option<JoinHandle<()>>,
}

struct State {
    done: AtomicU64,
    total: AtomicU64,
    files: AtomicU64,
    files_done: AtomicU64,
    stop: AtomicBool,
}

impl ProgressBar {
    /// A bar for `label`, drawn only when stderr is a terminal.
    pub fn new(label: &'static str) -> Self {
        let state = Arc::new(State {
            done: AtomicU64::new(0),
            total: AtomicU64::new(0),
            files: AtomicU64::new(0),
            files_done: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let ticker = io::stderr().is_terminal().then(|| {
            let state = Arc::clone(&state);
            std::thread::spawn(move || draw_until_stopped(label, &state))
        });
        ProgressBar { state, ticker }
    }
}

impl Progress for ProgressBar {
    fn total(&self, bytes: u64) {
        self.state.total.store(bytes, Ordering::Relaxed);
    }

    fn advance(&self, bytes: u64) {
        self.state.done.fetch_add(bytes, Ordering::Relaxed);
    }

    fn files(&self, count: usize) {
        self.state.files.store(count as u64, Ordering::Relaxed);
    }

    fn file_done(&self) {
        self.state.files_done.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for ProgressBar {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}

fn draw_until_stopped(label: &str, state: &State) {
    let started = Instant::now();
    let mut drawn = false;
    while !state.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        // Short runs finish before a bar would be worth seeing.
        if started.elapsed() < Duration::from_millis(500) {
            continue;
        }
        let done = state.done.load(Ordering::Relaxed);
        let total = state.total.load(Ordering::Relaxed).max(done);
        let rate = done as f64 / started.elapsed().as_secs_f64().max(0.001);
        let width = 30usize;
        let filled = done
            .saturating_mul(width as u64)
            .checked_div(total)
            .map_or(0, |filled| usize::try_from(filled).unwrap_or(width));
        let bar: String = "=".repeat(filled) + &" ".repeat(width.saturating_sub(filled));
        let eta = if rate > 0.0 {
            format!("{:.0}s", total.saturating_sub(done) as f64 / rate)
        } else {
            "?".into()
        };
        let files = match state.files.load(Ordering::Relaxed) {
            0 => String::new(),
            count => format!(
                "{}/{count} files  ",
                state.files_done.load(Ordering::Relaxed)
            ),
        };
        let mut stderr = io::stderr().lock();
        let _ = write!(
            stderr,
            "\r{label} [{bar}] {files}{} / {}  {}/s  eta {eta}   ",
            human_bytes(done as f64),
            human_bytes(total as f64),
            human_bytes(rate)
        );
        let _ = stderr.flush();
        drawn = true;
    }
    if drawn {
        let _ = write!(io::stderr().lock(), "\r{}\r", " ".repeat(100));
    }
}

fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS.get(unit).unwrap_or(&"B"))
}
