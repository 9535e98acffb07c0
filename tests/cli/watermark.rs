//! The image watermark through the CLI: round trip, a fast subset of attacks, wrong key,
//! unmarked images. The full attack table is the benchmark's job.

use crate::util::*;

fn detect(keys: &str, path: &std::path::Path) -> serde_json::Value {
    let r = hm(&[
        "image",
        "detect",
        "--key",
        keys,
        "--jsonl",
        path.to_str().unwrap(),
    ])
    .run();
    r.json_lines().into_iter().next().expect("one line")
}

/// `image embed --key KEYS --payload PAYLOAD SRC -o OUT`, which must succeed.
fn embed(keys: &str, payload: &str, src: &std::path::Path, out: &std::path::Path) {
    hm(&[
        "image",
        "embed",
        "--key",
        keys,
        "--payload",
        payload,
        src.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ])
    .run()
    .code(0);
}

#[test]
fn round_trip_and_fast_attacks() {
    let t = TestDir::new();
    let keys = t.keygen();
    let src = photo("p06_seeding_1920x1080.jpg");
    let marked = t.path("marked.jpg");
    let r = hm(&[
        "image",
        "embed",
        "--key",
        &keys,
        "--payload",
        "0123456789abcdef",
        src.to_str().unwrap(),
        "-o",
        marked.to_str().unwrap(),
        "--json",
    ])
    .run();
    r.code(0);
    let psnr = r.json_lines()[0]["psnr"].as_f64().unwrap();
    assert!(psnr > 40.0, "PSNR {psnr}");
    let d = detect(&keys, &marked);
    assert_eq!(d["payload"], "0123456789abcdef", "{d}");
    assert!(d["p_value"].as_f64().unwrap() < 1e-6);

    let img = image::open(&marked).unwrap();
    let (w, h) = (img.width(), img.height());
    let attacks: Vec<(&str, image::DynamicImage)> = vec![
        (
            "resize 0.5",
            img.resize_exact(w / 2, h / 2, image::imageops::FilterType::Triangle),
        ),
        (
            "crop 50%",
            img.crop_imm(w * 15 / 100, h * 15 / 100, w * 707 / 1000, h * 707 / 1000),
        ),
        ("flip", img.fliph()),
    ];
    for (name, a) in attacks {
        let p = t.path("attacked.png");
        a.save(&p).unwrap();
        let d = detect(&keys, &p);
        assert_eq!(d["payload"], "0123456789abcdef", "{name}: {d}");
    }
    // JPEG quality 50.
    let mut q50 = vec![];
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut q50, 50)
        .encode_image(&img.to_rgb8())
        .unwrap();
    let p = t.path("q50.jpg");
    std::fs::write(&p, q50).unwrap();
    assert_eq!(detect(&keys, &p)["payload"], "0123456789abcdef");

    // Wrong key never detects.
    let other = t.keygen_in("other");
    let r = hm(&["image", "detect", "--key", &other, marked.to_str().unwrap()]).run();
    r.code(1);
}

#[test]
fn embed_reads_the_mark_back_and_warns_when_it_cannot() {
    let t = TestDir::new();
    let keys = t.keygen();
    let embed = |src: &std::path::Path, out: &str, extra: &[&str]| {
        let out = t.path(out);
        let mut args = vec![
            "image",
            "embed",
            "--key",
            &keys,
            src.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--json",
        ];
        args.extend_from_slice(extra);
        let r = hm(&args).run();
        r.code(0);
        assert!(out.is_file());
        (r.json_lines()[0].clone(), r.stderr.clone())
    };
    // A photo: the written file carries the mark.
    let (v, err) = embed(&photo("p02_coffee_600x400.png"), "a.png", &[]);
    assert_eq!(v["readable"], true, "{v}");
    assert!(v["survives_webp"].is_boolean(), "{v}");
    assert!(!err.contains("warning"), "{err}");
    // The WebP check alone can be skipped.
    let (v, _) = embed(
        &photo("p02_coffee_600x400.png"),
        "a2.png",
        &["--no-webp-check"],
    );
    assert_eq!(v["readable"], true, "{v}");
    assert_eq!(v["survives_webp"], serde_json::Value::Null, "{v}");
    // Full-range noise everywhere: no room left for the mark. The file is still written,
    // and the user is told.
    let noise = image::RgbImage::from_raw(256, 256, pseudo_random(256 * 256 * 3, 5)).unwrap();
    let np = t.path("noise.png");
    noise.save(&np).unwrap();
    let (v, err) = embed(&np, "n.png", &[]);
    assert_eq!(v["readable"], false, "{v}");
    assert_eq!(v["survives_webp"], serde_json::Value::Null, "{v}");
    assert!(err.contains("could not be read back"), "{err}");
    // The check can be skipped.
    let (v, _) = embed(&np, "n2.png", &["--no-check"]);
    assert_eq!(v["readable"], serde_json::Value::Null, "{v}");
}

#[test]
fn unmarked_images_are_not_detected() {
    let t = TestDir::new();
    let keys = t.keygen();
    let mut paths = vec![];
    for (i, name) in [
        "p01_astronaut_512x512.png",
        "p03_rocket_640x427.png",
        "p06_seeding_1920x1080.jpg",
    ]
    .iter()
    .enumerate()
    {
        let _ = i;
        paths.push(photo(name));
    }
    paths.push(t.write_png("s.png", 400, 300, 21));
    let mut args = vec!["image", "detect", "--key", keys.as_str(), "--jsonl"];
    let ps: Vec<String> = paths
        .iter()
        .map(|p| p.to_str().unwrap().to_string())
        .collect();
    args.extend(ps.iter().map(String::as_str));
    let r = hm(&args).run();
    r.code(1);
    for d in r.json_lines() {
        assert_eq!(d["detected"], false, "{d}");
        assert_eq!(d["payload"], serde_json::Value::Null);
    }
}

#[test]
fn stamp_then_verify_matches_and_stripped_copy_still_says_ai() {
    let t = TestDir::new();
    let keys = t.keygen();
    let src = photo("p06_seeding_1920x1080.jpg");
    let out = t.path("stamped.jpg");
    let r = hm(&[
        "stamp",
        src.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
        "--keys",
        &keys,
        "--model",
        "gen",
        "--payload",
        "00000000cafef00d",
        "--json",
    ])
    .run();
    r.code(0);
    assert_eq!(r.json_lines()[0]["watermark_readable"], true);
    let r = hm(&["verify", "--json", out.to_str().unwrap(), "--keys", &keys]).run();
    r.code(0);
    let v = &r.json_lines()[0];
    assert_eq!(v["consistency"], "match", "{v}");
    assert_eq!(v["c2pa"]["watermarked_action"], true);
    // Strip the manifest: decode and re-encode the pixels.
    let img = image::open(&out).unwrap();
    let stripped = t.path("stripped.png");
    img.save(&stripped).unwrap();
    let r = hm(&[
        "verify",
        "--json",
        stripped.to_str().unwrap(),
        "--keys",
        &keys,
    ])
    .run();
    r.code(0);
    let v = &r.json_lines()[0];
    assert_eq!(v["verdict"], "ai_generated", "{v}");
    assert!(v["summary"].as_str().unwrap().contains("manifest missing"));
    // Without the key, the stripped copy carries no evidence we can read.
    hm(&["verify", stripped.to_str().unwrap()]).run().code(1);
}

#[test]
fn watermark_and_manifest_from_different_images_are_not_consistent() {
    let t = TestDir::new();
    let keys = t.keygen();
    let src = photo("p06_seeding_1920x1080.jpg");
    // The pixels carry watermark ID ...aaaa; the manifest's soft binding names ...bbbb (as if
    // a valid manifest of another stamped image had been re-signed over these pixels).
    let marked = t.path("marked.jpg");
    embed(&keys, "000000000000aaaa", &src, &marked);
    let def = t.path("def.json");
    std::fs::write(
        &def,
        r#"{"assertions": [{"label": "c2pa.soft-binding", "data": {"alg": "io.github.hallmark.image-watermark.v1", "blocks": [{"scope": {}, "value": "AAAAAAAAu7s="}], "name": "hallmark image watermark"}}]}"#,
    )
    .unwrap();
    let signed = t.path("signed.jpg");
    hm(&[
        "sign",
        marked.to_str().unwrap(),
        "-o",
        signed.to_str().unwrap(),
        "--keys",
        &keys,
        "--manifest",
        def.to_str().unwrap(),
    ])
    .run()
    .code(0);
    let r = hm(&[
        "verify",
        "--json",
        signed.to_str().unwrap(),
        "--keys",
        &keys,
    ])
    .run();
    r.code(3);
    let v = &r.json_lines()[0];
    assert_eq!(v["consistency"], "mismatch", "{v}");
    assert_eq!(v["verdict"], "tampered");
}

/// Marks issued by image format v1 (`testdata/marks`) must read exactly in every later
/// version: a change that breaks this orphans marks already in the world.
#[test]
fn format_v1_fixtures_still_decode() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../testdata/marks/v1");
    let key = dir.join("fixture.key");
    // git does not keep file modes beyond the executable bit: copy the public test key to a
    // private file, as the key loader requires of any key.
    let t = TestDir::new();
    let key_copy = t.path("fixture.key");
    std::fs::write(&key_copy, std::fs::read(&key).unwrap()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key_copy, std::fs::Permissions::from_mode(0o600)).unwrap();
    for (file, payload) in [
        ("small_320x213.png", "0123456789abcdef"),
        ("rocket_640x427.jpg", "fedcba9876543210"),
    ] {
        let d = detect(key_copy.to_str().unwrap(), &dir.join(file));
        assert_eq!(d["detected"], true, "{file}: {d}");
        assert_eq!(d["payload"], payload, "{file}: {d}");
        assert_eq!(d["key_id"], "d93ff57af24af966", "{file}: {d}");
    }
}

/// A composite (a marked square pasted into an unmarked photo) is reported as partly
/// marked, where the square is, with a map picture; the whole marked image is not.
#[test]
fn composites_are_located_and_mapped() {
    use image::GenericImage;
    let t = TestDir::new();
    let keys = t.keygen();
    let marked = t.path("marked.png");
    embed(
        &keys,
        "00000000c0ffee00",
        &photo("p06_seeding_1920x1080.jpg"),
        &marked,
    );
    let whole = detect(&keys, &marked);
    assert_eq!(whole["regions"]["partial"], false, "{whole}");
    assert_eq!(whole["regions"]["location"], "whole image", "{whole}");

    let m = image::open(&marked).unwrap();
    let mut base = image::open(photo("p03_rocket_640x427.png"))
        .unwrap()
        .resize_exact(1920, 1080, image::imageops::FilterType::Lanczos3);
    let (px, py, side) = (1100u32, 350u32, 640u32);
    base.copy_from(&m.crop_imm(600, 200, side, side), px, py)
        .unwrap();
    let comp = t.path("composite.png");
    base.save(&comp).unwrap();
    let map = t.path("map.png");
    let r = hm(&[
        "image",
        "detect",
        "--key",
        &keys,
        "--json",
        "--map",
        map.to_str().unwrap(),
        comp.to_str().unwrap(),
    ])
    .run();
    r.code(0);
    let d = &r.json_lines()[0];
    assert_eq!(d["payload"], "00000000c0ffee00", "{d}");
    let regions = &d["regions"];
    assert_eq!(regions["partial"], true, "{d}");
    let truth = f64::from(side * side) / (1920.0 * 1080.0);
    let frac = regions["fraction"].as_f64().unwrap();
    assert!(
        (frac - truth).abs() < 0.5 * truth,
        "fraction {frac} vs {truth}: {d}"
    );
    assert_eq!(regions["location"], "right", "{d}");
    let b = &regions["boxes"][0];
    let (bx, by) = (
        b["x"].as_u64().unwrap() as f64,
        b["y"].as_u64().unwrap() as f64,
    );
    let (bw, bh) = (
        b["width"].as_u64().unwrap() as f64,
        b["height"].as_u64().unwrap() as f64,
    );
    let ix = ((bx + bw).min(f64::from(px + side)) - bx.max(f64::from(px))).max(0.0);
    let iy = ((by + bh).min(f64::from(py + side)) - by.max(f64::from(py))).max(0.0);
    let inter = ix * iy;
    let iou = inter / (bw * bh + f64::from(side * side) - inter);
    assert!(iou >= 0.7, "box IoU {iou}: {b}");
    let pic = image::open(&map).expect("the map is a picture");
    assert_eq!((pic.width(), pic.height()), (1280, 720));
    // The map is not overwritten without --force.
    hm(&[
        "image",
        "detect",
        "--key",
        &keys,
        "--map",
        map.to_str().unwrap(),
        comp.to_str().unwrap(),
    ])
    .run()
    .code(2);
}

/// `--exhaustive` decodes every alignment of the budget: the same answer on a marked image,
/// no detection on an unmarked one, and more codewords checked there than the default.
#[test]
fn exhaustive_search_is_a_second_look() {
    let t = TestDir::new();
    let keys = t.keygen();
    let unmarked = photo("p02_coffee_600x400.png");
    let look = |extra: &[&str]| {
        let mut args = vec!["image", "detect", "--key", keys.as_str(), "--json"];
        args.extend_from_slice(extra);
        args.push(unmarked.to_str().unwrap());
        let r = hm(&args).run();
        r.code(1);
        r.json_lines().into_iter().next().expect("one line")
    };
    let quick = look(&[]);
    let slow = look(&["--exhaustive"]);
    assert_eq!(slow["detected"], false, "{slow}");
    assert!(
        slow["attempts"].as_u64().unwrap() > quick["attempts"].as_u64().unwrap(),
        "{quick} vs {slow}"
    );
    let marked = t.path("m.png");
    embed(&keys, "0000111122223333", &unmarked, &marked);
    let cropped = t.path("c.png");
    let img = image::open(&marked).unwrap();
    img.crop_imm(31, 17, 480, 320).save(&cropped).unwrap();
    let r = hm(&[
        "image",
        "detect",
        "--key",
        &keys,
        "--json",
        "--exhaustive",
        cropped.to_str().unwrap(),
    ])
    .run();
    r.code(0);
    assert_eq!(r.json_lines()[0]["payload"], "0000111122223333");
}

/// Several keys at once: the key that matched is named and the p-value is multiplied by the
/// number of keys (family-wise); other providers' keys alone find nothing.
#[test]
fn many_keys_name_the_one_that_matched() {
    let t = TestDir::new();
    let ours = t.keygen();
    let a = t.keygen_in("a");
    let b = t.keygen_in("b");
    let src = photo("p02_coffee_600x400.png");
    let out = t.path("m.png");
    embed(&ours, "00000000000000aa", &src, &out);
    let one = detect(&ours, &out);
    assert_eq!(one["keys"], 1);
    let r = hm(&[
        "image",
        "detect",
        "--json",
        "--key",
        &a,
        "--key",
        &b,
        "--key",
        &ours,
        out.to_str().unwrap(),
    ])
    .run();
    r.code(0);
    let many = &r.json_lines()[0];
    assert_eq!(many["payload"], "00000000000000aa");
    assert_eq!(many["key_id"], one["key_id"]);
    assert_eq!(many["keys"], 3);
    let (p1, p3) = (
        one["p_value"].as_f64().unwrap(),
        many["p_value"].as_f64().unwrap(),
    );
    assert!((p3 / p1 - 3.0).abs() < 1e-9, "{p1} {p3}");
    let r = hm(&[
        "image",
        "detect",
        "--key",
        &a,
        "--key",
        &b,
        out.to_str().unwrap(),
    ])
    .run();
    r.code(1);
}
