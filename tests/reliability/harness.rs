//! Running one hostile case: the binary under a timeout and GNU time, then the checks.

use std::{
    fmt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_hallmark");

/// A run longer than this is a hang (the slowest legitimate case takes well under a second
/// in a release build, a few in a debug build).
const TIMEOUT: Duration = Duration::from_secs(60);

/// A seeded xorshift generator: the same seed gives the same cases everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| (self.next() >> 24) as u8).collect()
    }
}

/// What went wrong in a run (nothing, for a good one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    Panic,
    Hang,
    Signal(i32),
    WrongExit(i32),
    DataLoss(String),
    ForgedLine,
}

/// One run of the binary on one case.
pub struct Outcome {
    pub case: String,
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub peak_kb: Option<u64>,
    pub problems: Vec<Problem>,
    pub stderr_head: String,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): exit {:?}, {:?}; stderr: {}",
            self.case,
            self.args.join(" "),
            self.code,
            self.problems,
            self.stderr_head
        )
    }
}

pub struct Suite {
    pub rng: Rng,
    pub dir: tempfile::TempDir,
    pub outcomes: Vec<Outcome>,
    pub cases: usize,
    timer: Option<PathBuf>,
    started: Instant,
    pub keys: PathBuf,
}

impl Suite {
    pub fn new(seed: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let timer = Path::new("/usr/bin/time")
            .exists()
            .then(|| PathBuf::from("/usr/bin/time"));
        let keys = dir.path().join("keys");
        let st = Command::new(BIN)
            .args(["keygen", "-q", "--out"])
            .arg(&keys)
            .status()
            .unwrap();
        assert!(st.success());
        Suite {
            rng: Rng::new(seed),
            dir,
            outcomes: vec![],
            cases: 0,
            timer,
            started: Instant::now(),
            keys,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs the binary with `args`; `ok_exits` are the exit codes this case may give.
    pub fn run(&mut self, case: &str, args: &[&str], ok_exits: &[i32]) -> &Outcome {
        self.run_env(case, args, ok_exits, &[])
    }

    pub fn run_env(
        &mut self,
        case: &str,
        args: &[&str],
        ok_exits: &[i32],
        env: &[(&str, &str)],
    ) -> &Outcome {
        let mem_file = self.path("mem.txt");
        let _ = std::fs::remove_file(&mem_file);
        let mut cmd = match &self.timer {
            Some(t) => {
                let mut c = Command::new(t);
                c.arg("-f").arg("%M").arg("-o").arg(&mem_file).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        cmd.args(args)
            .env("NO_COLOR", "1")
            .env("HOME", self.dir.path())
            .env_remove("HALLMARK_TRUST_ANCHORS")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        // Drain the pipes on threads so a chatty child never blocks on a full pipe.
        let mut out = child.stdout.take().unwrap();
        let mut err = child.stderr.take().unwrap();
        let t_out = std::thread::spawn(move || {
            let mut b = vec![];
            let _ = std::io::Read::read_to_end(&mut out, &mut b);
            b
        });
        let t_err = std::thread::spawn(move || {
            let mut b = vec![];
            let _ = std::io::Read::read_to_end(&mut err, &mut b);
            b
        });
        let start = Instant::now();
        let mut problems = vec![];
        let status = loop {
            if let Some(st) = child.try_wait().unwrap() {
                break Some(st);
            }
            if start.elapsed() > TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                problems.push(Problem::Hang);
                break None;
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let stdout = t_out.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
        // GNU time reports the child's death by signal in its own output and exits 128+n.
        let mut code = status.and_then(|s| s.code());
        #[cfg(unix)]
        if let Some(st) = status {
            use std::os::unix::process::ExitStatusExt;
            if let Some(sig) = st.signal() {
                problems.push(Problem::Signal(sig));
                code = None;
            }
        }
        let mem_text = std::fs::read_to_string(&mem_file).unwrap_or_default();
        if mem_text.contains("terminated by signal") {
            problems.push(Problem::Signal(0));
        }
        let peak_kb = mem_text
            .lines()
            .filter_map(|l| l.trim().parse::<u64>().ok())
            .next_back();
        if stderr.contains("panicked") || code == Some(101) {
            problems.push(Problem::Panic);
        }
        if let Some(c) = code
            && !ok_exits.contains(&c)
            && !problems.contains(&Problem::Panic)
        {
            problems.push(Problem::WrongExit(c));
        }
        // Nothing from a file may reach the terminal raw: no escape or bell byte in human
        // output (JSON escapes them itself).
        let human = !args.iter().any(|a| *a == "--json" || *a == "--jsonl");
        if human
            && (stdout.iter().any(|&b| b == 0x1b || b == 0x07)
                || stderr.bytes().any(|b| b == 0x1b || b == 0x07))
        {
            problems.push(Problem::ForgedLine);
        }
        self.outcomes.push(Outcome {
            case: case.to_string(),
            args: args.iter().map(|s| s.to_string()).collect(),
            code,
            peak_kb,
            problems,
            stderr_head: stderr.lines().take(3).collect::<Vec<_>>().join(" | "),
        });
        self.outcomes.last().unwrap()
    }

    pub fn data_loss(&mut self, case: &str, what: String) {
        self.outcomes.push(Outcome {
            case: case.to_string(),
            args: vec![],
            code: None,
            peak_kb: None,
            problems: vec![Problem::DataLoss(what)],
            stderr_head: String::new(),
        });
    }

    pub fn failures(&self) -> impl Iterator<Item = &Outcome> {
        self.outcomes.iter().filter(|o| !o.problems.is_empty())
    }

    pub fn report(&self) -> Report {
        let count = |f: &dyn Fn(&Problem) -> bool| {
            self.outcomes
                .iter()
                .filter(|o| o.problems.iter().any(f))
                .count()
        };
        let peak = self
            .outcomes
            .iter()
            .filter_map(|o| o.peak_kb.map(|k| (k, o)))
            .max_by_key(|(k, _)| *k);
        Report {
            cases: self.cases,
            runs: self.outcomes.iter().filter(|o| !o.args.is_empty()).count(),
            panics: count(&|p| *p == Problem::Panic),
            hangs: count(&|p| *p == Problem::Hang),
            signals: count(&|p| matches!(p, Problem::Signal(_))),
            wrong_exits: count(&|p| matches!(p, Problem::WrongExit(_))),
            data_loss: count(&|p| matches!(p, Problem::DataLoss(_))),
            forged_lines: count(&|p| *p == Problem::ForgedLine),
            peak_kb: peak.map(|(k, _)| k),
            peak_case: peak.map_or_else(String::new, |(_, o)| {
                format!("{}: {}", o.case, o.args.join(" "))
            }),
            seconds: self.started.elapsed().as_secs_f64(),
            memory_measured: self.timer.is_some(),
        }
    }
}

pub struct Report {
    pub cases: usize,
    pub runs: usize,
    pub panics: usize,
    pub hangs: usize,
    pub signals: usize,
    pub wrong_exits: usize,
    pub data_loss: usize,
    pub forged_lines: usize,
    pub peak_kb: Option<u64>,
    pub peak_case: String,
    pub seconds: f64,
    pub memory_measured: bool,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "reliability suite")?;
        writeln!(f, "  cases            {}", self.cases)?;
        writeln!(f, "  runs             {}", self.runs)?;
        writeln!(f, "  panics           {}", self.panics)?;
        writeln!(f, "  hangs            {}", self.hangs)?;
        writeln!(f, "  killed by signal {}", self.signals)?;
        writeln!(f, "  wrong exits      {}", self.wrong_exits)?;
        writeln!(f, "  data loss        {}", self.data_loss)?;
        writeln!(f, "  forged lines     {}", self.forged_lines)?;
        match self.peak_kb {
            Some(k) if self.memory_measured => writeln!(
                f,
                "  peak memory      {:.1} MiB ({})",
                k as f64 / 1024.0,
                self.peak_case
            )?,
            _ => writeln!(f, "  peak memory      not measured (no /usr/bin/time)")?,
        }
        write!(f, "  time             {:.1} s", self.seconds)
    }
}
