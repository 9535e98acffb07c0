//! Load benchmark of `hallmark serve` (issue 20): `wrk` against `/matches/byBinding` and
//! `/v1/verify` (a marked 1920x1080 JPEG) on loopback, for SQLite and, with `--db
//! postgres://...`, PostgreSQL. Reports throughput and p50/p99 latency. Not a test: bounded
//! in time (a few `--seconds` per run) and loopback only.
//!
//! cargo run --release -p hallmark-bench --bin serve-load -- [--db URL] [--records N]
//!     [--seconds S] [--connections C]
//!
//! Needs `wrk` (Debian's package). The registry is filled with `--records` signed records
//! (default 20,000) before the runs; the server runs in this process on its own threads.
#![allow(missing_docs, clippy::unwrap_used)]

use std::process::Command;

use base64::Engine as _;
use hallmark::{
    Stamper, WatermarkKey,
    c2pa::{CertOptions, SigningCredential},
    ledger::{Entry, next_record},
};
use hallmark_bench::photos_dir;
use hallmark_server::store::{NewRecord, Store};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Wrk {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: String,
}

fn ms(s: &str) -> f64 {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(s.len()));
    let v: f64 = num.parse().unwrap_or(f64::NAN);
    match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        _ => f64::NAN,
    }
}

fn wrk(url: &str, connections: u32, seconds: u32, script: Option<&str>) -> Wrk {
    let mut c = Command::new("wrk");
    // wrk needs at least as many connections as threads.
    c.args([
        &format!("-t{}", connections.clamp(1, 2)),
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
        "--timeout",
        "10s",
    ]);
    if let Some(s) = script {
        c.args(["-s", s]);
    }
    let out = c.arg(url).output().expect("run wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let find = |prefix: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .map(|l| l.trim_start()[prefix.len()..].trim().to_string())
            .unwrap_or_default()
    };
    Wrk {
        rps: find("Requests/sec:").parse().unwrap_or(f64::NAN),
        p50_ms: ms(&find("50%")),
        p99_ms: ms(&find("99%")),
        errors: text
            .lines()
            .filter(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("; "),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let tmp = tempfile::tempdir().unwrap();
    let db: String = arg(
        &args,
        "--db",
        format!("sqlite:{}", tmp.path().join("bench.db").display()),
    );
    let records: u64 = arg(&args, "--records", 20_000);
    let seconds: u32 = arg(&args, "--seconds", 10);
    let connections: u32 = arg(&args, "--connections", 16);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let keys = hallmark::c2pa::generate(&CertOptions::default()).unwrap();
    let cred = SigningCredential::from_pem(&keys.chain_pem, &keys.key_pem).unwrap();
    let wkey = WatermarkKey::from_bytes([5; 32]);
    let store = rt.block_on(Store::open(&db)).unwrap();
    let backend = store.backend();

    // Fill the registry: `records` stamps of fake images plus one real stamped photo.
    let started = std::time::Instant::now();
    let run = hallmark::Payload::random().0 & 0xffff_0000_0000_0000;
    let batch: Vec<NewRecord> = (0..records)
        .map(|i| {
            let entry = Entry {
                time: "2026-12-07T00:00:00Z".into(),
                input_sha256: "00".repeat(32),
                output_sha256: "11".repeat(32),
                watermark_id: hallmark::Payload(run | i),
                manifest_id: format!("urn:c2pa:bench-{run:x}-{i}"),
                model: Some("bench-model".into()),
                key_id: wkey.id().to_string(),
                signer: cred.subject(),
            };
            NewRecord {
                record: next_record(None, entry, cred.record_key().expect("Ed25519 key")),
                manifest_store: Some(vec![0u8; 8 * 1024]),
                source: "stamp",
            }
        })
        .collect();
    rt.block_on(async {
        use std::sync::Arc;
        let batch = Arc::new(batch);
        let mut tasks = vec![];
        for w in 0..8usize {
            let (s, b) = (store.clone(), batch.clone());
            tasks.push(tokio::spawn(async move {
                for r in b.iter().skip(w).step_by(8) {
                    s.insert(r).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let fill = started.elapsed().as_secs_f64();
    let stamper = Stamper::new(
        &wkey,
        SigningCredential::from_pem(&keys.chain_pem, &keys.key_pem).unwrap(),
    );
    let jpg = std::fs::read(photos_dir().join("p06_seeding_1920x1080.jpg")).unwrap();
    let st = hallmark::stamp(&jpg, &stamper, None).unwrap();
    let rec = next_record(
        None,
        hallmark::ledger::entry_for(&st, &stamper),
        stamper.signer().record_key().expect("Ed25519 key"),
    );
    rt.block_on(store.insert(&NewRecord {
        record: rec,
        manifest_store: Some(st.manifest_store.clone()),
        source: "stamp",
    }))
    .unwrap();
    let marked = tmp.path().join("marked.jpg");
    std::fs::write(&marked, &st.bytes).unwrap();

    // The server, in this process.
    let config = hallmark_server::Config {
        keys: vec![wkey],
        ..hallmark_server::Config::default()
    };
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = hallmark_server::router(hallmark_server::State::new(store.clone(), config));
    rt.spawn(async move { axum::serve(listener, app).await });

    println!(
        "hallmark serve load, {backend}: {records} records (+1 real stamp) filled in {fill:.1} s; wrk -t2 (-t1 at c=1), {seconds} s per run, loopback, {} cores",
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let value =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode((run | 12_345).to_be_bytes());
    let url = format!(
        "http://{addr}/matches/byBinding?alg={}&value={value}&maxResults=10",
        hallmark_server::store::ALG
    );
    let w = wrk(&url, connections, seconds, None);
    println!(
        "  GET /matches/byBinding   c={connections:<3} {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms  {}",
        w.rps, w.p50_ms, w.p99_ms, w.errors
    );
    let script = tmp.path().join("post.lua");
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/octet-stream\"\nlocal f = io.open(\"{}\", \"rb\")\nwrk.body = f:read(\"*all\")\nf:close()\n",
            marked.display()
        ),
    )
    .unwrap();
    for c in [1u32, 2] {
        let w = wrk(
            &format!("http://{addr}/v1/verify"),
            c,
            seconds,
            Some(script.to_str().unwrap()),
        );
        println!(
            "  POST /v1/verify 1080p    c={c:<3} {:>8.1} req/s  p50 {:>7.1} ms  p99 {:>7.1} ms  {}",
            w.rps, w.p50_ms, w.p99_ms, w.errors
        );
    }
}
