use std::{
    path::{Path, PathBuf},
    process::Command,
};

pub const BIN: &str = env!("CARGO_BIN_EXE_hallmark");

pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn code(&self, want: i32) -> &Self {
        assert_eq!(
            self.status,
            Some(want),
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }
    /// The JSON objects on stdout, one per line; each that names one of the `--json`
    /// schemas is checked against it (docs/json-schema.json).
    #[track_caller]
    pub fn json_lines(&self) -> Vec<serde_json::Value> {
        let v: Vec<serde_json::Value> = self
            .stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l:?}: {e}")))
            .collect();
        for o in &v {
            check_json_contract(o);
        }
        v
    }
}

/// docs/json-schema.json: the schema of every `--json` object, by name.
pub fn json_schemas() -> &'static serde_json::Value {
    static DOC: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    DOC.get_or_init(|| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/json-schema.json");
        serde_json::from_str(&std::fs::read_to_string(p).expect("docs/json-schema.json"))
            .expect("docs/json-schema.json is JSON")
    })
}

/// Checks an object that names one of the `--json` schemas against it.
#[track_caller]
pub fn check_json_contract(o: &serde_json::Value) {
    let Some(name) = o.get("schema").and_then(|s| s.as_str()) else {
        return;
    };
    let Some(schema) = json_schemas()["schemas"].get(name) else {
        return; // a document with its own format (a ledger checkpoint)
    };
    let v = jsonschema::validator_for(schema).expect("a valid JSON Schema");
    if let Err(e) = v.validate(o) {
        let mut shown = o.to_string();
        shown.truncate(600);
        panic!(
            "an object does not match {name} at {}: {}\n{shown}",
            e.instance_path(),
            e.to_string().chars().take(300).collect::<String>()
        );
    }
    assert!(o["file"].is_string(), "no file: {o}");
}

pub struct Cmd(Command);

impl Cmd {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.0.env(k, v);
        self
    }
    /// Runs with `input` on standard input.
    pub fn stdin(self, input: &str) -> Run {
        self.stdin_bytes(input.as_bytes())
    }
    /// Runs with `input` (any bytes) on standard input.
    pub fn stdin_bytes(mut self, input: &[u8]) -> Run {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .0
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run hallmark");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write stdin");
        let o = child.wait_with_output().expect("wait");
        Run {
            status: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    pub fn command(self) -> Command {
        self.0
    }
    pub fn run(mut self) -> Run {
        let o = self.0.output().expect("run hallmark");
        Run {
            status: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn hm(args: &[&str]) -> Cmd {
    let mut c = Command::new(BIN);
    c.args(args)
        .env_remove("HALLMARK_TRUST_ANCHORS")
        .env("NO_COLOR", "1")
        .env("HOME", "/nonexistent");
    Cmd(c)
}

pub struct TestDir(pub tempfile::TempDir);

impl TestDir {
    pub fn new() -> Self {
        TestDir(tempfile::tempdir().expect("tempdir"))
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    /// Creates the folder `name` and returns its path.
    pub fn dir(&self, name: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::create_dir_all(&p).expect("create folder");
        p
    }
    /// Runs keygen into `keys/` and returns the folder.
    pub fn keygen(&self) -> String {
        self.keygen_in("keys")
    }
    pub fn keygen_in(&self, name: &str) -> String {
        let dir = self.path(name);
        hm(&["keygen", "--out", dir.to_str().unwrap(), "-q"])
            .run()
            .code(0);
        dir.to_str().unwrap().to_string()
    }
    pub fn write_png(&self, name: &str, w: u32, h: u32, seed: u64) -> PathBuf {
        let p = self.path(name);
        scene(w, h, seed).save(&p).expect("save png");
        p
    }
    pub fn write_jpeg(&self, name: &str, w: u32, h: u32, seed: u64) -> PathBuf {
        let p = self.path(name);
        let mut out = vec![];
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&scene(w, h, seed))
            .expect("encode");
        std::fs::write(&p, out).unwrap();
        p
    }
}

/// A deterministic, textured synthetic picture (gradients, discs and noise).
pub fn scene(w: u32, h: u32, seed: u64) -> image::RgbImage {
    let noise = pseudo_random((w * h) as usize, seed);
    image::RgbImage::from_fn(w, h, |x, y| {
        let n = f32::from(noise[(y * w + x) as usize]) / 255.0 - 0.5;
        let fx = x as f32 / w as f32;
        let fy = y as f32 / h as f32;
        let cx = fx - 0.3 - (seed % 5) as f32 * 0.05;
        let cy = fy - 0.6;
        let disc = if cx * cx + cy * cy < 0.05 { 60.0 } else { 0.0 };
        let stripes = ((x as f32 * 0.21 + y as f32 * 0.07 + seed as f32).sin() * 25.0) * fy;
        let base = 60.0 + 120.0 * fx + disc + stripes + 30.0 * n;
        image::Rgb([
            base.clamp(0.0, 255.0) as u8,
            (base * 0.8 + 40.0 * fy).clamp(0.0, 255.0) as u8,
            (220.0 - base * 0.5).clamp(0.0, 255.0) as u8,
        ])
    })
}

pub fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 24) as u8
        })
        .collect()
}

pub fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, t: &[u8], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        out.extend(t);
        out.extend(data);
        let mut crc_in = t.to_vec();
        crc_in.extend(data);
        out.extend(crc32(&crc_in).to_be_bytes());
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = vec![];
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(
        &mut out,
        b"IDAT",
        &[0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01],
    );
    chunk(&mut out, b"IEND", &[]);
    out
}

pub fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

pub fn bmp(w: u32, h: u32) -> Vec<u8> {
    let row = (w * 3).div_ceil(4) * 4;
    let size = 54 + row * h;
    let mut v = b"BM".to_vec();
    v.extend(size.to_le_bytes());
    v.extend([0u8; 4]);
    v.extend(54u32.to_le_bytes());
    v.extend(40u32.to_le_bytes());
    v.extend((w as i32).to_le_bytes());
    v.extend((h as i32).to_le_bytes());
    v.extend(1u16.to_le_bytes());
    v.extend(24u16.to_le_bytes());
    v.extend([0u8; 24]);
    v.extend(vec![128u8; (row * h) as usize]);
    v
}

/// `hallmark sign IN -o OUT --keys KEYS`, which must succeed.
#[track_caller]
pub fn sign(input: &Path, out: &Path, keys: &str) {
    hm(&[
        "sign",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--keys",
        keys,
    ])
    .run()
    .code(0);
}

/// `hallmark label DIR --out-dir OUT --keys KEYS`.
pub fn label_into(dir: &Path, out: &Path, keys: &str) -> Run {
    hm(&[
        "label",
        dir.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
        "--keys",
        keys,
    ])
    .run()
}

pub fn photo(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../testdata/photos")
        .join(name)
}

/// `hallmark stamp IN -o OUT --keys KEYS --ledger LEDGER --no-check` (fast: no read-back).
pub fn stamp_into_ledger(input: &Path, out: &Path, keys: &str, ledger: &Path) -> Run {
    hm(&[
        "stamp",
        input.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--keys",
        keys,
        "--ledger",
        ledger.to_str().unwrap(),
        "--no-check",
    ])
    .run()
}

/// Every file under `p`, recursively (folders left out).
pub fn walk_files(p: &Path) -> Vec<PathBuf> {
    let mut out = vec![];
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk_files(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}
