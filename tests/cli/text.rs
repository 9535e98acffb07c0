//! `hallmark text generate` / `text detect`, end to end with a tiny random GGUF model (written
//! by `hallmark_lm::tiny`, no download): the same code path as with a real model.

use crate::util::*;

struct Text {
    t: TestDir,
    keys: String,
    model: String,
}

fn setup() -> Text {
    let t = TestDir::new();
    let keys = t.keygen();
    // A fixed watermark key, so every run scores the same texts with the same key: the
    // "finds nothing" checks are then not a fresh 1-in-1000 draw each run.
    let key_file = std::path::Path::new(&keys).join("watermark.key");
    std::fs::write(
        &key_file,
        "hallmark-watermark-key v1\n5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed\n",
    )
    .unwrap();
    let model = t.path("tiny.gguf");
    hallmark_lm::tiny::write_model(&model, 7, 1.0).unwrap();
    let model = model.to_str().unwrap().to_string();
    Text { t, keys, model }
}

impl Text {
    fn generate(&self, out: &str, seed: u64, extra: &[&str]) -> String {
        self.generate_with(&self.keys, out, seed, extra)
    }

    fn generate_with(&self, key: &str, out: &str, seed: u64, extra: &[&str]) -> String {
        let o = self.t.path(out);
        let seed = seed.to_string();
        let mut args = vec![
            "text",
            "generate",
            "--model",
            &self.model,
            "--key",
            key,
            "--prompt",
            "Once upon a time",
            "--max-tokens",
            "200",
            "--min-tokens",
            "200",
            "--temperature",
            "1.0",
            "--seed",
            &seed,
            "-o",
            o.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        hm(&args).run().code(0);
        std::fs::read_to_string(&o).unwrap()
    }

    fn detect_json(&self, file: &str, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
        self.detect_json_with(&self.keys, file, extra)
    }

    fn detect_json_with(
        &self,
        key: &str,
        file: &str,
        extra: &[&str],
    ) -> (Option<i32>, serde_json::Value) {
        let p = self.t.path(file);
        let mut args = vec![
            "--json",
            "text",
            "detect",
            "--key",
            key,
            "--tokenizer",
            &self.model,
            p.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let out = hm(&args).run();
        let v = out.json_lines().pop().unwrap_or_default();
        (out.status, v)
    }
}

#[test]
fn generated_text_is_detected_and_plain_text_is_not() {
    let x = setup();
    let text = x.generate("marked.txt", 1, &[]);
    assert!(text.len() > 150, "{text:?}");
    let (code, v) = x.detect_json("marked.txt", &[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["detected"], true);
    assert!(v["p_value"].as_f64().unwrap() < 1e-3, "{v}");
    assert!(v["tokens_scored"].as_u64().unwrap() > 100, "{v}");
    assert_eq!(
        v["scheme"], "hallmark-text/1 gumbel h=1 hmax=3",
        "the default scheme"
    );
    assert!(
        v["z_score"].is_null(),
        "the Gumbel scheme has no z-score: {v}"
    );
    // The span covers (most of) the text, in characters.
    let spans = v["spans"].as_array().unwrap();
    assert!(!spans.is_empty(), "{v}");
    let chars = text.chars().count() as u64;
    assert!(spans[0]["end"].as_u64().unwrap() <= chars);
    assert!(spans[0]["end"].as_u64().unwrap() - spans[0]["start"].as_u64().unwrap() > chars / 2);

    // The same model without the watermark: not detected (exit 1).
    // (--no-watermark wins over --key.)
    // The p-value is exact, so at the default threshold (1e-3) one unmarked text in a
    // thousand is flagged; these checks use 1e-6, so that random keys fail them one run in
    // a million, not one in a thousand.
    x.generate("plain.txt", 1, &["--no-watermark"]);
    let (code, v) = x.detect_json("plain.txt", &["--threshold", "1e-6"]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["detected"], false);
    assert!(v["p_value"].as_f64().unwrap() > 1e-6, "{v}");
}

#[test]
fn wrong_key_and_wrong_scheme_do_not_detect() {
    let x = setup();
    x.generate("marked.txt", 2, &[]);
    let other = x.t.keygen_in("other");
    let p = x.t.path("marked.txt");
    let out = hm(&[
        "text",
        "detect",
        "--key",
        &other,
        "--tokenizer",
        &x.model,
        // Exact p-values: the default 1e-3 would flag one wrong key in a thousand.
        "--threshold",
        "1e-6",
        p.to_str().unwrap(),
    ])
    .run();
    out.code(1);
    assert!(
        out.stdout.contains("no watermark detected"),
        "{}",
        out.stdout
    );
    let (code, _) = x.detect_json("marked.txt", &["--scheme", "kgw", "--threshold", "1e-6"]);
    assert_eq!(code, Some(1));
}

#[test]
fn keygen_records_the_scheme_and_older_keys_keep_theirs() {
    let x = setup();
    let conf = std::path::Path::new(&x.keys).join("text-watermark.conf");
    let recorded = std::fs::read_to_string(&conf).expect("keygen writes text-watermark.conf");
    assert_eq!(recorded.trim(), "hallmark-text/1 gumbel h=1 hmax=3");
    // Keys from before keygen recorded the scheme: both sides use the default of that time,
    // so text watermarked then is still found with it.
    std::fs::remove_file(&conf).unwrap();
    x.generate("old.txt", 4, &[]);
    let (code, v) = x.detect_json("old.txt", &[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["scheme"], "hallmark-text/1 gumbel h=2");
    // Another preset recorded at keygen, found by a detector given the key file itself.
    let dir = x.t.path("robust-keys");
    let d = dir.to_str().unwrap();
    hm(&["keygen", "--out", d, "-q", "--text-scheme", "robust"])
        .run()
        .code(0);
    let recorded = std::fs::read_to_string(dir.join("text-watermark.conf")).unwrap();
    assert_eq!(
        recorded.trim(),
        "hallmark-text/1 kgw-gumbel h=1 hmax=3 gamma=0.25 delta=2"
    );
    x.generate_with(d, "r.txt", 5, &[]);
    let key_file = dir.join("watermark.key");
    let (code, v) = x.detect_json_with(key_file.to_str().unwrap(), "r.txt", &[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(
        v["scheme"],
        "hallmark-text/1 kgw-gumbel h=1 hmax=3 gamma=0.25 delta=2"
    );
    // A damaged scheme file is an error on both sides (never a silent fallback), and
    // generation writes nothing.
    std::fs::write(dir.join("text-watermark.conf"), "hallmark-text/1 kgw h=x\n").unwrap();
    let out = hm(&[
        "text",
        "detect",
        "--key",
        d,
        "--tokenizer",
        &x.model,
        x.t.path("r.txt").to_str().unwrap(),
    ])
    .run();
    out.code(2);
    assert!(out.stderr.contains("text-watermark.conf"), "{}", out.stderr);
    let o = x.t.path("never.txt");
    hm(&[
        "text",
        "generate",
        "--model",
        &x.model,
        "--key",
        d,
        "--prompt",
        "Once upon a time",
        "-o",
        o.to_str().unwrap(),
    ])
    .run()
    .code(2);
    assert!(!o.exists());
    // An unknown scheme is refused before any key is written.
    let bad = x.t.path("bad-keys");
    hm(&[
        "keygen",
        "--out",
        bad.to_str().unwrap(),
        "--text-scheme",
        "nonsense",
    ])
    .run()
    .code(2);
    assert!(!bad.join("watermark.key").exists());
}

#[test]
fn kgw_scheme_from_the_keys_folder_config() {
    let x = setup();
    // The scheme recorded next to the key is used by both sides without flags.
    std::fs::write(
        std::path::Path::new(&x.keys).join("text-watermark.conf"),
        "hallmark-text/1 kgw h=3 gamma=0.25 delta=2\n",
    )
    .unwrap();
    x.generate("g.txt", 3, &[]);
    let (code, v) = x.detect_json("g.txt", &[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["scheme"], "hallmark-text/1 kgw h=3 gamma=0.25 delta=2");
    assert!(v["z_score"].as_f64().unwrap() > 3.0, "{v}");
    // Forcing another scheme (or width) on the detector finds nothing.
    let (code, _) = x.detect_json("g.txt", &["--scheme", "gumbel", "--threshold", "1e-6"]);
    assert_eq!(code, Some(1));
    let (code, _) = x.detect_json("g.txt", &["--scheme", "kgw", "--threshold", "1e-6"]);
    assert_eq!(code, Some(1));
    let (code, _) = x.detect_json("g.txt", &["--scheme", "kgw-robust", "--threshold", "1e-6"]);
    assert_eq!(code, Some(1));
}

#[test]
fn edit_robust_presets_by_name_on_both_sides() {
    let x = setup();
    for (name, header) in [
        ("kgw-robust", "hallmark-text/1 kgw h=1 gamma=0.25 delta=3"),
        (
            "robust",
            "hallmark-text/1 kgw-gumbel h=1 hmax=3 gamma=0.25 delta=2",
        ),
    ] {
        let out = format!("{name}.txt");
        x.generate(&out, 6, &["--scheme", name]);
        let (code, v) = x.detect_json(&out, &["--scheme", name]);
        assert_eq!(code, Some(0), "{name}: {v}");
        assert_eq!(v["scheme"], header);
        assert!(v["z_score"].as_f64().unwrap() > 3.0, "{name}: {v}");
        // The default scheme (distortion-free, other keying) does not read it.
        let (code, _) = x.detect_json(&out, &["--threshold", "1e-6"]);
        assert_eq!(code, Some(1), "{name}");
    }
}

#[test]
fn whitespace_changes_do_not_break_detection() {
    let x = setup();
    let text = x.generate("m.txt", 4, &[]);
    std::fs::write(
        x.t.path("doubled.txt"),
        text.replace(' ', "  ").replace('\n', "\n\n"),
    )
    .unwrap();
    let (code, v) = x.detect_json("doubled.txt", &[]);
    assert_eq!(code, Some(0), "{v}");
}

#[test]
fn jsonl_batch_keeps_order_and_reports_bad_lines() {
    let x = setup();
    let marked = x.generate("m.txt", 5, &[]);
    let lines = [
        serde_json::json!({"id": "a", "text": marked}).to_string(),
        serde_json::json!({"id": 2, "text": "   "}).to_string(),
        "not json".to_string(),
        serde_json::json!({"id": "c", "text": "The quick brown fox jumps over the lazy dog, again and again, for a long while."}).to_string(),
    ];
    let out = hm(&[
        "text",
        "detect",
        "--jsonl",
        "--key",
        &x.keys,
        "--tokenizer",
        &x.model,
        "-",
    ])
    .stdin(&lines.join("\n"));
    out.code(2);
    let v = out.json_lines();
    assert_eq!(v.len(), 4, "{}", out.stdout);
    assert_eq!(v[0]["id"], "a");
    assert_eq!(v[0]["detected"], true);
    assert!(v[0]["spans"].is_array());
    assert_eq!(v[1]["id"], 2);
    assert!(
        v[1]["error"]["message"].as_str().unwrap().contains("empty"),
        "{}",
        v[1]
    );
    assert!(v[2]["error"]["message"].is_string());
    assert_eq!(v[2]["error"]["code"], "invalid_input");
    assert_eq!(v[3]["id"], "c");
    assert_eq!(v[3]["detected"], false);
    assert!(v[3]["p_value"].as_f64().unwrap() > 1e-3);
}

#[test]
fn prompt_text_is_not_evidence() {
    let x = setup();
    let marked = x.generate("m.txt", 6, &[]);
    // A text made only of the prompt scores nothing once the prompt is excluded.
    std::fs::write(x.t.path("prompt.txt"), &marked).unwrap();
    let p = x.t.path("prompt.txt");
    let (code, v) = x.detect_json("m.txt", &["--prompt-file", p.to_str().unwrap()]);
    assert_eq!(code, Some(1), "{v}");
    assert_eq!(v["tokens_scored"], 0, "{v}");
}

#[test]
fn bad_inputs_fail_cleanly() {
    let x = setup();
    let empty = x.t.path("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let binary = x.t.path("bin.txt");
    std::fs::write(&binary, [0xffu8, 0xfe, 0x00, 0x80]).unwrap();
    let not_model = x.t.path("notmodel.gguf");
    std::fs::write(&not_model, b"GGUF\x03\x00\x00\x00garbage").unwrap();
    let junk = x.t.path("junk.json");
    std::fs::write(&junk, b"{not a tokenizer").unwrap();
    let path = |p: &std::path::PathBuf| p.to_str().unwrap().to_string();
    // text detect --key KEY --tokenizer TOK FILE
    let detect = |key: &str, tok: &str, file: &str| -> Vec<String> {
        ["text", "detect", "--key", key, "--tokenizer", tok, file]
            .map(String::from)
            .to_vec()
    };
    // text generate --model MODEL --key KEYS --prompt PROMPT EXTRA...
    let generate = |model: &str, prompt: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "text", "generate", "--model", model, "--key", &x.keys, "--prompt", prompt,
        ]
        .map(String::from)
        .to_vec();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let (e, m, k) = (path(&empty), x.model.as_str(), x.keys.as_str());
    let cases: Vec<Vec<String>> = vec![
        detect(k, m, &e),
        detect(k, m, &path(&binary)),
        detect(k, &path(&not_model), &e),
        detect(k, &path(&junk), &e),
        detect(m, m, &e),
        generate(&path(&not_model), "hi", &[]),
        generate("/nonexistent.gguf", "hi", &[]),
        generate(m, "  ", &[]),
        generate(m, "hi", &["--temperature", "0"]),
        [
            "text",
            "detect",
            "--key",
            k,
            "--tokenizer",
            m,
            "--scheme",
            "hallmark-text/1 kgw h=3 gamma=2 delta=1",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for args in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = hm(&args).stdin("");
        out.code(2);
        assert!(out.stderr.contains("error:"), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
    }
}

#[test]
fn a_tokenizer_json_detects_like_the_model_file() {
    let x = setup();
    x.generate("m.txt", 8, &[]);
    let tok = hallmark_lm::TextTokenizer::from_file(std::path::Path::new(&x.model)).unwrap();
    let json = x.t.path("tokenizer.json");
    std::fs::write(&json, tok.to_json().unwrap()).unwrap();
    let (code_gguf, v_gguf) = x.detect_json("m.txt", &[]);
    let p = x.t.path("m.txt");
    let out = hm(&[
        "--json",
        "text",
        "detect",
        "--key",
        &x.keys,
        "--tokenizer",
        json.to_str().unwrap(),
        p.to_str().unwrap(),
    ])
    .run();
    assert_eq!(out.status, code_gguf);
    let v_json = out.json_lines().pop().unwrap();
    assert_eq!(v_json["p_value"], v_gguf["p_value"]);
    assert_eq!(v_json["tokens"], v_gguf["tokens"]);
    assert_eq!(code_gguf, Some(0), "{v_gguf}");
}

#[test]
fn verify_points_text_files_to_text_detect() {
    let x = setup();
    x.generate("m.txt", 9, &[]);
    let p = x.t.path("m.txt");
    let out = hm(&["verify", p.to_str().unwrap(), "--keys", &x.keys]).run();
    out.code(2);
    assert!(out.stderr.contains("text detect"), "{}", out.stderr);
}

#[test]
fn outputs_never_replace_inputs_and_huge_texts_are_refused() {
    let x = setup();
    let prompt = x.t.path("prompt.txt");
    std::fs::write(&prompt, "Once upon a time").unwrap();
    let key_file = std::path::Path::new(&x.keys).join("watermark.key");
    let key_before = std::fs::read(&key_file).unwrap();
    for out in [prompt.clone(), key_file.clone()] {
        let r = hm(&[
            "text",
            "generate",
            "--model",
            &x.model,
            "--key",
            &x.keys,
            "--prompt-file",
            prompt.to_str().unwrap(),
            "--max-tokens",
            "5",
            "-o",
            out.to_str().unwrap(),
        ])
        .run();
        r.code(2);
        assert!(r.stderr.contains("refusing"), "{}", r.stderr);
    }
    assert_eq!(
        std::fs::read_to_string(&prompt).unwrap(),
        "Once upon a time"
    );
    assert_eq!(std::fs::read(&key_file).unwrap(), key_before);
    // Larger than the 64 MiB cap: a clear error, not an out-of-memory.
    let big = x.t.path("big.txt");
    std::fs::write(&big, "a ".repeat(33 << 20)).unwrap();
    let r = hm(&[
        "text",
        "detect",
        "--key",
        &x.keys,
        "--tokenizer",
        &x.model,
        big.to_str().unwrap(),
    ])
    .run();
    r.code(2);
    assert!(r.stderr.contains("larger than"), "{}", r.stderr);
}

/// `text tokenizer` writes the tokenizer a GGUF model holds as a tokenizer.json, and
/// detection with it scores exactly as with the model.
#[test]
fn a_models_tokenizer_exported_as_json_detects_the_same() {
    let x = setup();
    let marked = x.generate("m.txt", 11, &[]);
    let story = x.t.path("story.txt");
    std::fs::write(&story, &marked).unwrap();
    let tj = x.t.path("tokenizer.json");
    hm(&["text", "tokenizer", &x.model, "-o", tj.to_str().unwrap()])
        .run()
        .code(0);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&tj).unwrap()).unwrap();
    assert!(json["model"]["vocab"].is_object());
    let with = |tok: &str| {
        let r = hm(&[
            "--json",
            "text",
            "detect",
            "--key",
            &x.keys,
            "--tokenizer",
            tok,
            story.to_str().unwrap(),
        ])
        .run();
        r.code(0);
        r.json_lines().remove(0)
    };
    let (a, b) = (with(&x.model), with(tj.to_str().unwrap()));
    assert_eq!(a["p_value"], b["p_value"]);
    assert_eq!(a["tokens"], b["tokens"]);
    // An existing output is kept without --force.
    hm(&["text", "tokenizer", &x.model, "-o", tj.to_str().unwrap()])
        .run()
        .code(2);
}

/// Many keys at once (`--key` repeated, or a folder of keys folders): the key that matched
/// is named, and the p-value is the single key's times the number of keys (family-wise).
#[test]
fn many_keys_name_the_one_that_matched_with_a_corrected_p_value() {
    let x = setup();
    x.generate("marked.txt", 3, &[]);
    let pool = x.t.dir("pool");
    let mut others = vec![];
    for i in 0..3 {
        let d = pool.join(format!("provider{i}"));
        hm(&["keygen", "--out", d.to_str().unwrap(), "-q"])
            .run()
            .code(0);
        others.push(d.to_str().unwrap().to_string());
    }
    let (_, one) = x.detect_json("marked.txt", &[]);
    let own_id = one["key_id"].as_str().unwrap().to_string();
    assert_eq!(one["keys"], 1);
    let (code, many) = x.detect_json("marked.txt", &["--key", &others[0], "--key", &others[1]]);
    assert_eq!(code, Some(0), "{many}");
    assert_eq!(many["keys"], 3);
    assert_eq!(many["key_id"], own_id.as_str());
    let (p1, p3) = (
        one["p_value"].as_f64().unwrap(),
        many["p_value"].as_f64().unwrap(),
    );
    assert!((p3 / p1 - 3.0).abs() < 1e-6 || p3 == 1.0, "{p1} {p3}");
    // A folder of keys folders, with the marking key copied in among them.
    let copy = pool.join("ours");
    std::fs::create_dir(&copy).unwrap();
    for f in ["watermark.key", "text-watermark.conf"] {
        std::fs::copy(std::path::Path::new(&x.keys).join(f), copy.join(f)).unwrap();
    }
    let (code, v) = x.detect_json_with(pool.to_str().unwrap(), "marked.txt", &[]);
    assert_eq!(code, Some(0), "{v}");
    assert_eq!(v["keys"], 4);
    assert_eq!(v["key_id"], own_id.as_str());
    // Only other providers' keys: nothing found.
    let (code, v) = x.detect_json_with(
        &others[2],
        "marked.txt",
        &["--key", &others[0], "--threshold", "1e-6"],
    );
    assert_eq!(code, Some(1), "{v}");
    // A folder without keys is a clear error.
    let empty = x.t.dir("empty");
    let (code, _) = x.detect_json_with(empty.to_str().unwrap(), "marked.txt", &[]);
    assert_eq!(code, Some(2));
}
